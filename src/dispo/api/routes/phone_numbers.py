"""Phone numbers (``/product/phone-numbers``): the numbers campaigns call from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from dispo.api.contract import ContractRoute
from dispo.api.deps import DbDep, OrgDep
from dispo.api.responses import ok
from dispo.api.schemas import AUTHED, Envelope, PhoneNumberPublic, errors
from dispo.store import phone_numbers as store
from dispo.timeutil import ms_to_iso
from dispo.types import Row

router = APIRouter(tags=["phone numbers"], route_class=ContractRoute)


def render_number(row: Row) -> dict[str, Any]:
    """A number in the shape of Atoms' phone-number product."""
    return {
        "_id": row["id"],
        "productType": "telephony",
        "isActive": bool(row["is_active"]),
        "agentId": row["agent_id"],
        "attributes": {
            "provider": row["provider"],
            "phoneNumber": row["phone_number"],
            "countryCode": row["country_code"],
        },
        "createdAt": ms_to_iso(row["created_at"]),
        "updatedAt": ms_to_iso(row["updated_at"]),
    }


@router.get(
    "/product/phone-numbers",
    summary="The organization's phone numbers; a number's _id is what a campaign's phoneNumberIds takes",
    response_model=Envelope[list[PhoneNumberPublic]],
    responses=errors(*AUTHED),
)
def list_phone_numbers(db: DbDep, org_id: OrgDep) -> Response:
    with db.read() as conn:
        rows = store.list_numbers(conn, org_id)
    return ok([render_number(r) for r in rows])
