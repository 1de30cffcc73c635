"""Backups: encrypted archives of the whole appliance or of one tenant, and getting the data back.

Owns the backup key (keys), the archive format (archive), the list of archives in the backup directory
(catalog), the dump and restore of the database (whole: dumps), one tenant's rows (tenant_rows), how they
fit the appliance they are imported into (tenant_ids), one tenant's export and import (tenant_archive) and
their jobs (tenant_jobs), the scheduled backups' retention (retention).

Offers: keys, catalog (list, newest_good), the create / verify / restore / export / import operations.
May call: monitoring (a copied tenant's heartbeat URLs), tenancy, jobs, audit, access, common.
"""
