"""What the console's form dialogs share: a title, the fields, the line that says why the input cannot be
sent (it never is), a submit button and Cancel (escape too). A query dialog also has Clear (no filter)."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Generic, TypeVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

T = TypeVar("T")


class FormDialog(ModalScreen[T | None], Generic[T]):
    """Dismissed with what `parsed` makes of the fields, or None when cancelled."""

    TITLE: ClassVar[str] = ""
    DIALOG_ID: ClassVar[str] = ""
    CLASSES: ClassVar[str] = "dialog"
    FIRST: ClassVar[str] = ""  # the id of the field that has the focus first
    SUBMIT: ClassVar[tuple[str, str]] = ("Create", "create")  # the submit button's label and id
    ERROR_ID: ClassVar[str] = "form-error"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    @abstractmethod
    def fields(self) -> ComposeResult:
        """The fields (and any line of help below them)."""

    @abstractmethod
    def parsed(self) -> T:
        """What the fields hold, or ValueError saying what is wrong (shown in the dialog)."""

    def buttons(self) -> ComposeResult:
        label, button_id = self.SUBMIT
        yield Button(label, id=button_id, variant="primary")
        yield Button("Cancel", id="cancel")

    def pressed(self, button_id: str | None) -> None:
        """A button other than submit and Cancel was pressed."""

    def compose(self) -> ComposeResult:
        with Vertical(classes=self.CLASSES, id=self.DIALOG_ID):
            yield Label(self.TITLE, classes="dialog-title")
            yield from self.fields()
            yield Label("", id=self.ERROR_ID, classes="dialog-error")
            with Horizontal(classes="dialog-buttons"):
                yield from self.buttons()

    def on_mount(self) -> None:
        self.query_one(f"#{self.FIRST}").focus()

    @property
    def error(self) -> str:
        """The message shown for input that cannot be sent ("" when there is none)."""
        return str(self.query_one(f"#{self.ERROR_ID}", Label).content)

    def value(self, name: str) -> str:
        """What the Input with the id `name` holds, without the spaces around it."""
        return self.query_one(f"#{name}", Input).value.strip()

    def _submit(self) -> None:
        try:
            result = self.parsed()
        except ValueError as exc:
            self.query_one(f"#{self.ERROR_ID}", Label).update(str(exc))
            return
        self.dismiss(result)

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.SUBMIT[1]:
            self._submit()
        elif event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.pressed(event.button.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QueryDialog(FormDialog[T]):
    """A view's server-side filters, shown as they are now (`current`): Query sends them, Clear sends
    `empty` (no filter)."""

    SUBMIT = ("Query", "apply")
    ERROR_ID = "query-error"

    def __init__(self, current: T) -> None:
        super().__init__()
        self.current = current

    @abstractmethod
    def empty(self) -> T:
        """No filter."""

    def buttons(self) -> ComposeResult:
        submit, cancel = super().buttons()
        yield from (submit, Button("Clear", id="clear"), cancel)

    def pressed(self, button_id: str | None) -> None:
        if button_id == "clear":
            self.dismiss(self.empty())
