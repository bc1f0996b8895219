"""Audiences (the contact lists campaigns call): the ``Audience`` class.

Same methods and arguments as ``smallestai.atoms.audience.Audience`` (4.3.1)::

    from dispo.sdk import Audience

    audience = Audience()
    aud = audience.create(
        name="Spring leads",
        phone_numbers=["+14155550123", "+14155550124"],
        names=[("Jordan", "Lee"), ("Sam", "Park")],
    )
    audience_id = aud["data"]["_id"]

Unlike the official client, contacts are written with the ``csv`` module, so a name containing a
comma or a quote arrives intact.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from dispo.sdk._client import BaseClient, ResponseDict, segment


def contacts_csv(phone_numbers: Sequence[str], names: Sequence[tuple[str, str]] | None = None) -> bytes:
    """The ``firstName,lastName,phoneNumber`` CSV Atoms takes; unnamed contacts are ``User <n>``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["firstName", "lastName", "phoneNumber"])
    for i, (first, last) in enumerate(_names(phone_numbers, names)):
        writer.writerow([first, last, phone_numbers[i]])
    return out.getvalue().encode("utf-8")


def contacts_json(
    phone_numbers: Sequence[str], names: Sequence[tuple[str, str]] | None = None
) -> list[dict[str, str]]:
    """``[{phoneNumber, firstName, lastName}, ...]``, named as ``contacts_csv`` names them."""
    return [
        {"phoneNumber": phone, "firstName": first, "lastName": last}
        for phone, (first, last) in zip(phone_numbers, _names(phone_numbers, names), strict=True)
    ]


def _names(phone_numbers: Sequence[str], names: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    return [
        (names[i][0], names[i][1]) if names and i < len(names) else ("User", str(i + 1))
        for i in range(len(phone_numbers))
    ]


class Audience(BaseClient):
    """Create, read, list and delete audiences, and add contacts to them (``/audience``)."""

    def create(
        self,
        name: str,
        phone_numbers: Sequence[str],
        names: Sequence[tuple[str, str]] | None = None,
        description: str = "",
        phone_number_column_name: str = "phoneNumber",
    ) -> ResponseDict:
        """Upload a new audience (multipart CSV); ``data`` is the audience, with its ``_id``.

        ``names`` are ``(firstName, lastName)`` pairs in the order of ``phone_numbers``.
        """
        return self._request(
            "POST",
            "/audience",
            files={"file": ("contacts.csv", contacts_csv(phone_numbers, names), "text/csv")},
            data={
                "name": name,
                "phoneNumberColumnName": phone_number_column_name,
                "description": description,
            },
        )

    def get(self, audience_id: str) -> ResponseDict:
        """One audience (with ``membersCount``)."""
        return self._request("GET", f"/audience/{segment(audience_id)}")

    def get_members(
        self, audience_id: str, page: int = 1, offset: int = 10, search: str | None = None
    ) -> ResponseDict:
        """One page of members (``offset`` is the page size, as Atoms names it).

        ``data = {members: [{_id, data: {firstName, lastName, phoneNumber}}], totalCount, totalPages, hasMore}``
        """
        params: dict[str, str | int | float] = {"page": page, "offset": offset}
        if search:
            params["search"] = search
        return self._request("GET", f"/audience/{segment(audience_id)}/members", params=params)

    def delete(self, audience_id: str) -> ResponseDict:
        """Delete an audience (refused with ``BadRequestError`` while a campaign uses it)."""
        return self._request("DELETE", f"/audience/{segment(audience_id)}")

    def add_contacts(
        self,
        audience_id: str,
        phone_numbers: Sequence[str],
        names: Sequence[tuple[str, str]] | None = None,
    ) -> ResponseDict:
        """Add contacts; numbers already in the audience are skipped.

        ``data = [{message, data: {added, skipped}}]`` (a one-item list, as in the Atoms API).
        """
        return self._request(
            "POST",
            f"/audience/{segment(audience_id)}/members",
            json={"members": contacts_json(phone_numbers, names)},
        )

    def delete_members(self, audience_id: str, member_ids: Sequence[str]) -> ResponseDict:
        """**Dispo** (not in 4.3.1): delete members by ``_id``; ``data = {deletedCount}``."""
        return self._request(
            "DELETE", f"/audience/{segment(audience_id)}/members", json={"memberIds": list(member_ids)}
        )

    # Last, so that the method does not shadow the built-in `list` in the annotations above.
    def list(self) -> ResponseDict:
        """Every audience of the organization: ``data = [audience, ...]``."""
        return self._request("GET", "/audience")
