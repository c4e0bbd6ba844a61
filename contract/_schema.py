"""The contract's typed model: a project's table, column by column, validated as a whole.

A column has a role (a Safe Harbor identifier with its category, a quasi-identifier such
as a ZIP code, a date or an age, a clinical feature, the label, the site), a type, and
what its values may be. From the columns follow the de-identified table (what Safe Harbor
leaves of each column), the model's features and label, the request a client may send
and the subgroups the promotion gate compares. A contract that could let an identifier
through (a feature named like one, a date feature, a derived column shadowing a declared
one) is refused when it is read, before any data is.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from safeguards.phi import IDENTIFIER_FIELDS

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# What de-identification adds: the keyed pseudonym of the record's identifier.
PSEUDONYM = "pseudonym"
# Ages above this are set to it (and flagged), as Safe Harbor requires of ages over 89.
AGE_CAP = 90


class Role(StrEnum):
    IDENTIFIER = "identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    FEATURE = "feature"
    LABEL = "label"
    SITE = "site"


class Type(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CATEGORY = "category"
    STRING = "string"
    DATE = "date"
    TEXT = "text"


class Kind(StrEnum):
    """How Safe Harbor treats a quasi-identifier (or a feature that is an age)."""

    ZIP = "zip"
    DATE = "date"
    AGE = "age"


class Category(StrEnum):
    """The 18 identifier categories of 45 CFR 164.514(b)(2)(i)(A)-(R)."""

    NAMES = "names"
    GEOGRAPHIC = "geographic"
    DATES = "dates"
    TELEPHONE = "telephone"
    FAX = "fax"
    EMAIL = "email"
    SSN = "ssn"
    MRN = "mrn"
    HEALTH_PLAN = "health_plan"
    ACCOUNT = "account"
    LICENSE = "license"
    VEHICLE = "vehicle"
    DEVICE = "device"
    URL = "url"
    IP = "ip"
    BIOMETRIC = "biometric"
    PHOTO = "photo"
    OTHER = "other"


CATEGORY_TEXT = {
    Category.NAMES: "(A) names",
    Category.GEOGRAPHIC: "(B) geographic subdivisions smaller than a state",
    Category.DATES: "(C) dates (except year) directly related to an individual; ages over 89",
    Category.TELEPHONE: "(D) telephone numbers",
    Category.FAX: "(E) fax numbers",
    Category.EMAIL: "(F) electronic mail addresses",
    Category.SSN: "(G) social security numbers",
    Category.MRN: "(H) medical record numbers",
    Category.HEALTH_PLAN: "(I) health plan beneficiary numbers",
    Category.ACCOUNT: "(J) account numbers",
    Category.LICENSE: "(K) certificate/license numbers",
    Category.VEHICLE: "(L) vehicle identifiers and serial numbers",
    Category.DEVICE: "(M) device identifiers and serial numbers",
    Category.URL: "(N) web URLs",
    Category.IP: "(O) IP addresses",
    Category.BIOMETRIC: "(P) biometric identifiers",
    Category.PHOTO: "(Q) full-face photographs and comparable images",
    Category.OTHER: "(R) any other unique identifying number, characteristic or code",
}
# The category a quasi-identifier's kind belongs to.
KIND_CATEGORY = {Kind.ZIP: Category.GEOGRAPHIC, Kind.DATE: Category.DATES, Kind.AGE: Category.DATES}
NUMERIC = frozenset({Type.INTEGER, Type.NUMBER})
FEATURE_TYPES = frozenset({Type.INTEGER, Type.NUMBER, Type.BOOLEAN, Type.CATEGORY})
# Booleans as files spell them, whatever the case.
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")


class Column(BaseModel):
    """One column of the project's table."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    name: str
    role: Role
    type: Type
    description: str = ""
    unit: str | None = None
    # Identifiers: their Safe Harbor category; the one pseudonymised stays linkable.
    category: Category | None = None
    pseudonymize: bool = False
    # Quasi-identifiers (and a feature that is an age): how Safe Harbor treats them.
    kind: Kind | None = None
    # Numbers: inclusive bounds. Categories: every allowed value.
    range: tuple[float, float] | None = None
    categories: tuple[str, ...] | None = None
    # Whether a value may be missing; never for the label.
    missing: bool = False
    # Dates in files: a strptime format, ISO 8601 when unset.
    format: str | None = None
    # The column's name in the team's files, when it differs.
    source: str | None = None
    # The label: what true means.
    meaning: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        problems = list(self._problems())
        if problems:
            raise ValueError(f"column {self.name}: " + "; ".join(problems))
        return self

    def _problems(self) -> Any:
        if not NAME.match(self.name):
            yield "a name is lowercase letters, digits and _, starting with a letter"
        role, kind = self.role, self.kind
        if role == Role.IDENTIFIER:
            if self.category is None:
                yield "an identifier needs its Safe Harbor category"
            if self.type not in (Type.STRING, Type.DATE, Type.TEXT):
                # Never a number: identifiers such as MRNs and ZIPs keep their leading zeros.
                yield "an identifier is a string, date or text"
            if self.type == Type.DATE and self.category != Category.DATES:
                yield "a date identifier is of category dates"
            if self.pseudonymize and self.type != Type.STRING:
                yield "only a string identifier can be pseudonymised"
        elif self.category is not None or self.pseudonymize:
            yield "only identifiers have a category or a pseudonym"
        if role == Role.QUASI_IDENTIFIER:
            expected = {Kind.ZIP: Type.STRING, Kind.DATE: Type.DATE, Kind.AGE: Type.INTEGER}
            if kind is None:
                yield "a quasi-identifier needs its kind: zip, date or age"
            elif self.type != expected[kind]:
                yield f"a {kind} quasi-identifier is of type {expected[kind]}"
        elif kind is not None and not (role == Role.FEATURE and kind == Kind.AGE):
            yield "only quasi-identifiers, and a feature that is an age, have a kind"
        if role == Role.FEATURE:
            if self.type not in FEATURE_TYPES:
                yield "a feature is an integer, number, boolean or category (never a date)"
            if self.name in IDENTIFIER_FIELDS:
                yield "is named like an identifier; declare it as one"
            if kind == Kind.AGE and self.type != Type.INTEGER:
                yield "an age is an integer"
        if role == Role.LABEL:
            if self.type != Type.BOOLEAN:
                yield "the label is a boolean (binary outcome)"
            if not self.meaning:
                yield "the label needs its meaning (what true means)"
            if self.missing:
                yield "the label may not be missing"
        if role == Role.SITE and self.type != Type.CATEGORY:
            yield "the site is a category"
        if self.type in NUMERIC and role in (Role.FEATURE, Role.QUASI_IDENTIFIER):
            if self.range is None:
                yield "a number needs its range"
            elif self.range[0] >= self.range[1]:
                yield "a range is [low, high] with low below high"
        elif self.range is not None:
            yield "only numbers have a range"
        if self.type == Type.CATEGORY:
            if not self.categories or len(set(self.categories)) != len(self.categories):
                yield "a category needs its distinct allowed values"
        elif self.categories is not None:
            yield "only categories list allowed values"
        if self.format is not None and self.type != Type.DATE:
            yield "only dates have a format"

    @property
    def derived_name(self) -> str | None:
        """The column Safe Harbor turns this one into, when it is not kept or removed."""
        if self.kind == Kind.ZIP:
            return f"{self.name}3"
        if self.kind == Kind.DATE:
            return f"{self.name.removesuffix('_date')}_year"
        if self.kind == Kind.AGE:
            return f"{self.name}_90_plus"
        return None


class Subgroup(BaseModel):
    """A column whose groups the gate compares: each category (or flag), or numeric bands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    bands: tuple[tuple[float, float], ...] | None = None


class Contract(BaseModel):
    """A project's table: every column, the label's meaning, the intended use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    version: int = Field(default=1, ge=1)
    description: str
    intended_use: str
    limitations: str = ""
    columns: tuple[Column, ...]
    subgroups: tuple[Subgroup, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _columns_by_name(cls, data: Any) -> Any:
        """In the file, columns are a mapping from name to the rest of their fields."""
        if isinstance(data, dict) and isinstance(data.get("columns"), dict):
            columns = []
            for name, spec in data["columns"].items():
                if not isinstance(spec, dict):
                    raise ValueError(f"column {name}: its fields are a mapping")
                columns.append({"name": name, **spec})
            data = {**data, "columns": columns}
        return data

    @model_validator(mode="after")
    def _whole(self) -> Contract:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> Any:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            yield f"columns declared twice: {', '.join(duplicates)}"
        roles = [c.role for c in self.columns]
        if roles.count(Role.LABEL) != 1:
            yield "a contract has exactly one label"
        if Role.FEATURE not in roles:
            yield "a contract has at least one feature"
        if roles.count(Role.SITE) > 1:
            yield "a contract has at most one site"
        if sum(c.pseudonymize for c in self.columns) > 1:
            yield "at most one identifier is pseudonymised"
        derived = [c.derived_name for c in self.columns if c.derived_name]
        if any(c.pseudonymize for c in self.columns):
            derived.append(PSEUDONYM)
        clashes = sorted(set(derived) & set(names)) + sorted(
            {d for d in derived if derived.count(d) > 1}
        )
        if clashes:
            yield f"de-identification would make columns that clash: {', '.join(clashes)}"
        sources = [c.source for c in self.columns if c.source]
        if len(set(sources)) != len(sources):
            yield "two columns name the same source column"
        by_name = {c.name: c for c in self.columns}
        for group in self.subgroups:
            column = by_name.get(group.column)
            if column is None or column.role not in (Role.FEATURE, Role.SITE):
                yield f"subgroup {group.column}: not a feature or the site"
            elif column.type in NUMERIC and not group.bands:
                yield f"subgroup {group.column}: a number is grouped in bands"
            elif column.type not in NUMERIC and group.bands:
                yield f"subgroup {group.column}: only numbers have bands"

    # -- what follows from the columns ---------------------------------------------------

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def with_role(self, *roles: Role) -> list[Column]:
        return [c for c in self.columns if c.role in roles]

    @cached_property
    def features(self) -> list[str]:
        """The model's inputs, in declared order."""
        return [c.name for c in self.with_role(Role.FEATURE)]

    @cached_property
    def label(self) -> str:
        return self.with_role(Role.LABEL)[0].name

    @cached_property
    def site(self) -> str | None:
        sites = self.with_role(Role.SITE)
        return sites[0].name if sites else None

    @cached_property
    def raw_columns(self) -> list[str]:
        """Every column of the raw table (identifiers included), in declared order."""
        return [c.name for c in self.columns]

    @cached_property
    def deidentified_types(self) -> dict[str, Type]:
        """The de-identified table: the pseudonym, what quasi-identifiers become, the
        features, the site and the label. Nothing else survives Safe Harbor."""
        out: dict[str, Type] = {}
        if any(c.pseudonymize for c in self.columns):
            out[PSEUDONYM] = Type.STRING
        derived = {Kind.ZIP: Type.STRING, Kind.DATE: Type.INTEGER, Kind.AGE: Type.BOOLEAN}
        for c in self.columns:
            if c.kind is not None:
                out[str(c.derived_name)] = derived[c.kind]
        for c in self.columns:
            if c.role == Role.FEATURE or (c.role == Role.QUASI_IDENTIFIER and c.kind == Kind.AGE):
                out[c.name] = c.type
        for c in self.with_role(Role.SITE, Role.LABEL):
            out[c.name] = c.type
        return out

    @cached_property
    def never_model_inputs(self) -> frozenset[str]:
        """Names that must never reach a model, its signature or its artifacts: every raw
        column but the features and the label, and every column de-identification adds."""
        kept = {*self.features, self.label}
        return frozenset({*self.raw_columns, *self.deidentified_types} - kept)

    @cached_property
    def sources(self) -> dict[str, str]:
        """Source column name -> contract column name, as the contract maps them."""
        return {c.source: c.name for c in self.columns if c.source}

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the contract's canonical form: what lineage records."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()

    def example(self) -> dict[str, Any]:
        """A valid request that is nobody's: each feature's mid-range value, first
        category, or false."""
        row: dict[str, Any] = {}
        for name in self.features:
            c = self.column(name)
            if c.type in NUMERIC and c.range is not None:
                middle = (c.range[0] + c.range[1]) / 2
                row[name] = round(middle) if c.type == Type.INTEGER else float(middle)
            elif c.type == Type.CATEGORY and c.categories:
                row[name] = c.categories[0]
            else:
                row[name] = False
        return row
