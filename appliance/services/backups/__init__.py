"""Backups: encrypted archives of the whole appliance or of one tenant, and getting the data back.

Owns the backup key (keys), the archive format (archive), the list of archives in the backup directory
(catalog), the dump and restore of the database (whole: dumps), one tenant's rows (tenant_rows), the
scheduled backups' retention (retention).

Offers: keys, catalog (list, newest_good), the create / verify / restore / export / import operations.
May call: tenancy, audit, common.
"""
