"""Audiences (``/audience``): the contact lists campaigns call.

``POST /audience`` takes what the official SDK sends: multipart form data with a CSV ``file`` part
(header ``firstName,lastName,phoneNumber``) and the fields ``name``, ``phoneNumberColumnName`` and
``description``. The whole upload is checked before anything is stored, and stored in one
transaction, so a refused upload leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from starlette.responses import Response

from dispo.api.bodies import JsonBody
from dispo.api.contract import ContractRoute, json_body
from dispo.api.deps import DbDep, OrgDep
from dispo.api.responses import ok
from dispo.api.schemas import (
    AUTHED,
    WITH_BODY,
    AudiencePublic,
    DeletedCountPublic,
    Envelope,
    MemberPagePublic,
    MembersAddedPublic,
    MembersCreate,
    MembersDelete,
    errors,
    parse,
)
from dispo.errors import BadRequest, NotFound, ValidationFailed
from dispo.ids import is_object_id
from dispo.phones import EXAMPLE, to_e164
from dispo.store import audiences as store
from dispo.timeutil import ms_to_iso
from dispo.types import Row

router = APIRouter(tags=["audiences"], route_class=ContractRoute)

MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_MEMBERS = 100_000  # per upload or POST …/members
MAX_REPORTED = 20  # problems listed one by one before "and N more"
DEFAULT_PHONE_COLUMN = "phoneNumber"

Member = tuple[str, dict[str, Any]]


def render_audience(row: Row, members_count: int | None = None) -> dict[str, Any]:
    """An audience in the shape of Atoms' audience (``AudienceGet200ResponseDataInner``)."""
    out: dict[str, Any] = {
        "_id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "phoneNumberColumnName": row["phone_number_column_name"],
        "organization": row["org_id"],
        "createdAt": ms_to_iso(row["created_at"]),
        "updatedAt": ms_to_iso(row["updated_at"]),
    }
    count = members_count if members_count is not None else row.get("members_count")
    if count is not None:
        out["membersCount"] = int(count)
    return out


def _audience_or_404(conn: Any, org_id: str, audience_id: str) -> Row:
    row = store.get_audience(conn, org_id, audience_id) if is_object_id(audience_id) else None
    if row is None:
        raise NotFound(f"No audience {audience_id} in this organization: list audiences with GET /audience.")
    return row


def _capped(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_REPORTED:
        return problems
    return [*problems[:MAX_REPORTED], f"… and {len(problems) - MAX_REPORTED} more problems like these."]


def _text_field(value: str | None, field: str, *, required: bool, max_length: int) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(f"{field} is required: send it as a form field, e.g. {field}=Spring leads.")
    if len(text) > max_length:
        raise ValidationFailed(f"{field} is longer than {max_length} characters: shorten it.")
    if "\x00" in text:
        raise ValidationFailed(f"{field} contains a NUL character: remove it.")
    return text


def parse_contacts_csv(raw: bytes, phone_column: str) -> list[Member]:
    """The members of an uploaded CSV, numbers in E.164; every problem is reported at once.

    Rows are numbered as a spreadsheet numbers them: the header is row 1.
    """
    reader = csv.reader(io.StringIO(_csv_text(raw), newline=""), strict=True)
    try:
        columns = _read_header(reader, phone_column)
        phone_index = columns.index(phone_column)
        members: list[Member] = []
        problems: list[str] = []
        first_row_of: dict[str, int] = {}
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            member = _csv_member(reader.line_num, cells, columns, phone_index, first_row_of)
            if isinstance(member, str):
                problems.append(member)
                continue
            members.append(member)
            if len(members) > MAX_MEMBERS:
                raise ValidationFailed(
                    f"The CSV has more than {MAX_MEMBERS} contacts: split it, create the audience from the "
                    "first part and add the rest with POST /audience/{id}/members."
                )
    except csv.Error as exc:
        raise ValidationFailed(
            f"The CSV is malformed at line {reader.line_num}: {exc}. Check its quotes: a value with a "
            'comma, quote or line break must be in double quotes, and a quote inside one doubled ("").'
        ) from None
    if problems:
        raise ValidationFailed(problems[0], errors=_capped(problems))
    if not members:
        raise ValidationFailed(
            f"The CSV has a header but no contacts: add one row per contact under firstName,lastName,{phone_column}."
        )
    return members


def _csv_text(raw: bytes) -> str:
    """The upload as text: at most MAX_CSV_BYTES of UTF-8 (a BOM allowed), no NUL."""
    if len(raw) > MAX_CSV_BYTES:
        raise ValidationFailed(
            f"The CSV is larger than {MAX_CSV_BYTES // (1024 * 1024)} MiB: split it, create the audience "
            "from the first part and add the rest with POST /audience/{id}/members."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(
            "The CSV is not UTF-8 text: save it as CSV UTF-8 and upload it again."
        ) from None
    if "\x00" in text:
        raise ValidationFailed("The CSV contains NUL characters: it looks like a binary file; upload a CSV.")
    return text


def _read_header(reader: Iterator[list[str]], phone_column: str) -> list[str]:
    """The column names of the first non-blank line, checked (see ``_check_header``)."""
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)  # blank lines before the header
    if header is None:
        raise ValidationFailed(
            f"The CSV is empty: its first line must be a header such as firstName,lastName,{phone_column}."
        )
    columns = [cell.strip() for cell in header]
    _check_header(columns, phone_column)
    return columns


def _csv_member(
    row_number: int, cells: list[str], columns: list[str], phone_index: int, first_row_of: dict[str, int]
) -> Member | str:
    """Row ``row_number`` as a member, or the problem with it. ``first_row_of`` maps each number
    seen so far to its row (this row's is added), to refuse repeats."""
    phone_column = columns[phone_index]
    if len(cells) != len(columns):
        return (
            f"Row {row_number} has {len(cells)} values but the header has {len(columns)} columns: "
            'put values that contain commas in double quotes ("Lee, Jr.").'
        )
    raw_phone = cells[phone_index].strip()
    if not raw_phone:
        return f"Row {row_number} has no {phone_column}: fill it in or delete the row."
    phone = to_e164(raw_phone)
    if phone is None:
        return (
            f"Row {row_number}: {raw_phone!r} is not a valid E.164 phone number: write it with "
            f"the country code, e.g. {EXAMPLE}."
        )
    if phone in first_row_of:
        return (
            f"Row {row_number} repeats {phone} from row {first_row_of[phone]}: numbers must be "
            "unique within an audience; delete the duplicate row."
        )
    first_row_of[phone] = row_number
    data = {column: cell.strip() for column, cell in zip(columns, cells, strict=True)}
    data[phone_column] = phone
    return phone, data


def _check_header(columns: list[str], phone_column: str) -> None:
    for i, column in enumerate(columns, start=1):
        if not column:
            raise ValidationFailed(
                f"Column {i} of the CSV header has no name: name it or delete the empty column."
            )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValidationFailed(f"The CSV header repeats {', '.join(repeated)}: column names must be unique.")
    if phone_column not in columns:
        raise ValidationFailed(
            f"The CSV has no {phone_column} column (its columns: {', '.join(columns)}): add one, or set "
            "phoneNumberColumnName to the column that holds the numbers."
        )


def parse_members_body(body: Any, phone_column: str) -> list[Member]:
    """``{members: [{phoneNumber, firstName?, …}]}`` as members; the phone key is the audience's
    column (``phoneNumber`` is accepted too). Repeats within the body count as duplicates (skipped)."""
    members: list[Any] = parse(MembersCreate, body).members
    if len(members) > MAX_MEMBERS:
        raise ValidationFailed(
            f"members lists {len(members)} contacts; send at most {MAX_MEMBERS} per request."
        )
    out: list[Member] = []
    problems: list[str] = []
    for i, member in enumerate(members):
        if not isinstance(member, dict):
            problems.append(f"members[{i}] must be an object with {phone_column}.")
            continue
        raw_phone = member.get(phone_column, member.get(DEFAULT_PHONE_COLUMN))
        if not isinstance(raw_phone, str) or not raw_phone.strip():
            problems.append(f"members[{i}] has no {phone_column}: give each member a phone number.")
            continue
        phone = to_e164(raw_phone)
        if phone is None:
            problems.append(
                f"members[{i}]: {raw_phone!r} is not a valid E.164 phone number: write it with the "
                f"country code, e.g. {EXAMPLE}."
            )
            continue
        data = {key: value for key, value in member.items() if key != DEFAULT_PHONE_COLUMN}
        data[phone_column] = phone
        out.append((phone, data))
    if problems:
        raise ValidationFailed(problems[0], errors=_capped(problems))
    return out


@router.post(
    "/audience",
    summary="Create an audience from a CSV upload (multipart/form-data)",
    response_model=Envelope[AudiencePublic],
    responses=errors(*WITH_BODY),
)
def create_audience(
    request: Request,
    db: DbDep,
    org_id: OrgDep,
    file: UploadFile | None = File(
        None, description="CSV with a header row, e.g. firstName,lastName,phoneNumber."
    ),
    name: str | None = Form(None, description="The audience's name."),
    phone_number_column_name: str | None = Form(
        None,
        alias="phoneNumberColumnName",
        description="The CSV column holding the numbers (default phoneNumber).",
    ),
    description: str | None = Form(None),
) -> Response:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest(
            "POST /audience takes multipart/form-data: a CSV part named file plus the fields name, "
            "phoneNumberColumnName and description (the official SDK's Audience.create sends exactly this)."
        )
    if file is None:
        raise ValidationFailed(
            "file is missing: attach the contacts as a CSV part named file, with a header row such as "
            "firstName,lastName,phoneNumber."
        )
    audience_name = _text_field(name, "name", required=True, max_length=200)
    column = _text_field(phone_number_column_name, "phoneNumberColumnName", required=False, max_length=64)
    column = column or DEFAULT_PHONE_COLUMN
    about = _text_field(description, "description", required=False, max_length=10_000)
    members = parse_contacts_csv(file.file.read(MAX_CSV_BYTES + 1), column)
    with db.write() as conn:
        audience_id = store.create_audience(
            conn,
            org_id,
            name=audience_name,
            description=about,
            phone_number_column_name=column,
            members=members,
        )
        row = store.get_audience(conn, org_id, audience_id)
    assert row is not None
    return ok(render_audience(row, len(members)))


@router.get(
    "/audience",
    summary="List the organization's audiences, newest first",
    response_model=Envelope[list[AudiencePublic]],
    responses=errors(*AUTHED),
)
def list_audiences(db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        rows = store.list_audiences(conn, org_id)
    return ok([render_audience(r) for r in rows])


@router.get(
    "/audience/{audience_id}",
    summary="Get an audience",
    response_model=Envelope[AudiencePublic],
    responses=errors(*AUTHED, 404),
)
def get_audience(audience_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        row = _audience_or_404(conn, org_id, audience_id)
        count = store.count_members(conn, audience_id)
    return ok(render_audience(row, count))


@router.get(
    "/audience/{audience_id}/members",
    summary="One page of an audience's members",
    response_model=Envelope[MemberPagePublic],
    responses=errors(*AUTHED, 404),
)
def list_members(
    audience_id: str,
    db: DbDep,
    org_id: OrgDep,
    page: int = Query(1, ge=1, le=1_000_000),
    offset: int = Query(10, ge=1, le=1000, description="Page size (the Atoms API calls it offset)."),
    search: str | None = Query(None, max_length=200, description="Phone-number prefix or any text."),
) -> Response:
    if search and "\x00" in search:
        raise ValidationFailed("search contains a NUL character (%00): remove it.")
    with db.read() as conn:
        _audience_or_404(conn, org_id, audience_id)
        rows, total = store.list_members(
            conn, audience_id, limit=offset, offset=(page - 1) * offset, search=search
        )
    total_pages = -(-total // offset)
    return ok(
        {
            "members": [{"_id": r["id"], "data": r["data"]} for r in rows],
            "totalCount": total,
            "totalPages": total_pages,
            "hasMore": page < total_pages,
            "page": page,
            "offset": offset,
        }
    )


@router.post(
    "/audience/{audience_id}/members",
    summary="Add members; numbers already present are skipped",
    response_model=Envelope[list[MembersAddedPublic]],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(
        MembersCreate,
        {"members": [{"phoneNumber": "+14155550123", "firstName": "Jordan", "lastName": "Lee"}]},
    ),
)
def add_members(audience_id: str, db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    with db.write() as conn:
        row = _audience_or_404(conn, org_id, audience_id)
        members = parse_members_body(body, row["phone_number_column_name"])
        added = store.add_members(conn, audience_id, members)
    skipped = len(members) - added
    message = f"Added {added} member{'' if added == 1 else 's'}; skipped {skipped} already in the audience."
    return ok([{"message": message, "data": {"added": added, "skipped": skipped}}])


@router.delete(
    "/audience/{audience_id}/members",
    summary="Delete members by id",
    response_model=Envelope[DeletedCountPublic],
    responses=errors(*WITH_BODY, 404),
    openapi_extra=json_body(MembersDelete, {"memberIds": ["6b018a82b38fd67804d54c9f"]}),
)
def delete_members(audience_id: str, db: DbDep, org_id: OrgDep, body: JsonBody) -> Response:
    with db.write() as conn:
        _audience_or_404(conn, org_id, audience_id)
        ids = parse(MembersDelete, body).member_ids
        deleted = store.delete_members(conn, audience_id, list(dict.fromkeys(ids)))
    return ok({"deletedCount": deleted})


@router.delete(
    "/audience/{audience_id}",
    summary="Delete an audience (refused while a campaign uses it)",
    response_model=Envelope[list[str]],
    responses=errors(*AUTHED, 404),
)
def delete_audience(audience_id: str, db: DbDep, org_id: OrgDep) -> Response:
    with db.write() as conn:
        _audience_or_404(conn, org_id, audience_id)
        holding = store.campaigns_holding(conn, audience_id)
        if holding:
            names = ", ".join(f"{c['name']!r} ({c['id']}, {c['status']})" for c in holding)
            raise BadRequest(
                f"Audience {audience_id} is used by campaign(s) {names}: stop them (POST /campaign/{{id}}/stop) "
                "or delete them (DELETE /campaign/{id}) first."
            )
        store.delete_audience(conn, audience_id)
    return ok([audience_id])
