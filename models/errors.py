"""Domain errors. They carry structured field violations so the transport can map them onto
``google.rpc.BadRequest`` without parsing messages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DataIssue:
    """One problem in a dataset: where it is and what is wrong."""

    file: str
    row: int  # 1-based physical line in the file (the header is line 1); 0 = whole file
    field: str
    value: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.row}" if self.row else self.file
        return f"{where}: field '{self.field}' = {self.value!r}: {self.message}"


class DataValidationError(ValueError):
    """A dataset was rejected; ``issues`` lists every problem found, not just the first."""

    def __init__(self, issues: list[DataIssue]) -> None:
        self.issues = issues
        shown = "\n".join(f"  {i}" for i in issues[:50])
        more = f"\n  ... and {len(issues) - 50} more" if len(issues) > 50 else ""
        super().__init__(f"{len(issues)} problem(s) in dataset:\n{shown}{more}")


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """A bad request parameter, named the way the API names it."""

    field: str
    value: str
    description: str


class InvalidParameterError(ValueError):
    """Scoring parameters (dates, weights, filters) that cannot be used."""

    def __init__(self, violations: list[FieldViolation]) -> None:
        self.violations = violations
        super().__init__("; ".join(f"{v.field}={v.value!r}: {v.description}" for v in violations))


class NotFoundError(LookupError):
    """A named resource (provider, node, country) that the graph does not hold."""

    def __init__(
        self, resource_type: str, resource_name: str, suggestions: tuple[str, ...] = ()
    ) -> None:
        self.resource_type = resource_type
        self.resource_name = resource_name
        #: Ids the name most likely meant (did you mean ...?), best first.
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"{resource_type} '{resource_name}' not found{hint}")


class PreconditionError(RuntimeError):
    """The request is valid but the system is not in a state that allows it (a method that
    needs the dataset's tables, asked of an edge-table graph): FAILED_PRECONDITION."""

    def __init__(self, kind: str, subject: str, description: str) -> None:
        self.kind = kind  # a short machine-readable tag, e.g. "EDGE_TABLE"
        self.subject = subject  # what the precondition is about, e.g. "graph/versions/3"
        self.description = description
        super().__init__(f"{subject}: {description}")
