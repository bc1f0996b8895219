"""``AtomsClient``: agents, phone numbers, and one place to reach calls, audiences and campaigns.

Mirrors the methods of ``smallestai.atoms.AtomsClient`` (4.3.1) that map onto the REST API, with
the same names, arguments and defaults. Where 4.3.1 takes a generated request model
(``create_agent``, ``update_agent``, ``create_campaign``, ``start_outbound_call``, ``get_campaigns``)
this one takes a plain ``dict`` in the wire format (camelCase keys), or the model itself.
Every method returns a ``ResponseDict``, so ``resp["data"]`` and ``resp.data`` both work::

    from dispo.sdk import AtomsClient

    client = AtomsClient()
    agent = client.new_agent(name="Sales agent", prompt="You are a sales agent.")
    agent_id = agent.data  # the same as agent["data"]
    client.update_agent(agent_id, {"description": "Outbound sales"})
    client.call.get_calls(agent_id=agent_id, limit=5)
    client.delete_agent(id=agent_id)

``.call``, ``.audience`` and ``.campaign`` are a ``Call``, an ``Audience`` and a ``Campaign``
sharing this client's configuration and connection pool; ``close()`` closes them all.
Knowledge bases, agent templates, workflows, users and organizations have no Dispo endpoint and
no method here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

import httpx

from dispo.sdk._client import DEFAULT_TIMEOUT, BaseClient, ResponseDict, segment
from dispo.sdk.audience import Audience
from dispo.sdk.call import Call, Instant, OneOrMany, SortBy, SortOrder
from dispo.sdk.campaign import Campaign, campaign_body


class RequestModel(Protocol):
    """A request model of the official SDK (anything with ``to_dict()`` giving the wire form)."""

    def to_dict(self) -> dict[str, Any]: ...


Body = Mapping[str, Any] | RequestModel


def _body(request: Body) -> dict[str, Any]:
    return dict(request) if isinstance(request, Mapping) else dict(request.to_dict())


class AtomsClient(BaseClient):
    """The Atoms-compatible client. ``AtomsClient(base_url=None, api_key=None)``; see ``BaseClient``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout=timeout, transport=transport, http_client=http_client)
        self._call = Call(self.base_url, self.api_key, http_client=self._http)
        self._audience = Audience(self.base_url, self.api_key, http_client=self._http)
        self._campaign = Campaign(self.base_url, self.api_key, http_client=self._http)
        for manager in (self._call, self._audience, self._campaign):
            manager._parent = self  # `AtomsClient().call` must not lose its pool with the client

    @property
    def call(self) -> Call:
        """Call logs and post-call analytics config."""
        return self._call

    @property
    def audience(self) -> Audience:
        """Audience management."""
        return self._audience

    @property
    def campaign(self) -> Campaign:
        """Campaign management."""
        return self._campaign

    # -----------------------------------------------------------------------------------------
    # Agents

    def create_agent(self, create_agent_request: Body) -> ResponseDict:
        """Create an agent from a ``POST /agent`` body; ``data`` is the new id.

        ``client.create_agent({"name": "Sales agent", "globalPrompt": "You are…", "language": "en"})``
        """
        return self._request("POST", "/agent", json=_body(create_agent_request))

    def new_agent(
        self,
        name: str,
        prompt: str | None = None,
        description: str = "",
        kb_id: str | None = None,
        background_sound: str = "",
    ) -> ResponseDict:
        """Create an agent from simple arguments; ``.data`` (or ``["data"]``) is its id.

        ``background_sound``: ``""``, ``"office"``, ``"cafe"``, ``"call_center"`` or ``"static"``.
        """
        body: dict[str, Any] = {"name": name, "description": description, "backgroundSound": background_sound}
        if prompt is not None:
            body["globalPrompt"] = prompt
        if kb_id is not None:
            body["globalKnowledgeBaseId"] = kb_id
        return self.create_agent(body)

    def get_agents(
        self, page: int | None = None, offset: int | None = None, search: str | None = None
    ) -> ResponseDict:
        """Active agents: ``data = {agents: [...], total}``; ``offset`` is the page size."""
        params: dict[str, str | int | float] = {}
        if page is not None:
            params["page"] = page
        if offset is not None:
            params["offset"] = offset
        if search is not None:
            params["search"] = search
        return self._request("GET", "/agent", params=params)

    def get_agent_by_id(self, id: str) -> ResponseDict:
        """One agent (archived ones too)."""
        return self._request("GET", f"/agent/{segment(id)}")

    def update_agent(self, id: str, agent_id_patch_request: Body) -> ResponseDict:
        """Change only the fields given: ``client.update_agent(agent_id, {"name": "Renamed"})``."""
        return self._request("PATCH", f"/agent/{segment(id)}", json=_body(agent_id_patch_request))

    def delete_agent(self, id: str) -> ResponseDict:
        """Archive an agent (reversible on the server); ``ConflictError`` if it is already archived."""
        return self._request("DELETE", f"/agent/{segment(id)}/archive")

    # -----------------------------------------------------------------------------------------
    # Calls (the same as ``client.call``)

    def start_outbound_call(self, conversation_outbound_post_request: Body) -> ResponseDict:
        """Dial a number: body ``{agentId, phoneNumber, variables?}``; ``data = {conversationId}``."""
        return self._request("POST", "/conversation/outbound", json=_body(conversation_outbound_post_request))

    def get_call(self, call_id: str) -> ResponseDict:
        """See ``Call.get_call``."""
        return self._call.get_call(call_id)

    def get_conversation_logs(self, id: str) -> ResponseDict:
        """The same as ``get_call`` (4.3.1 returns a model of an older shape; this returns the call)."""
        return self._call.get_call(id)

    def get_calls(
        self,
        agent_id: OneOrMany | None = None,
        campaign_id: OneOrMany | None = None,
        page: int = 1,
        limit: int = 10,
        status: OneOrMany | None = None,
        call_type: OneOrMany | None = None,
        search: str | None = None,
        *,
        disconnect_reason: OneOrMany | None = None,
        date_from: Instant | None = None,
        date_to: Instant | None = None,
        duration_filter: OneOrMany | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        sort_by: SortBy | None = None,
        sort_order: SortOrder | None = None,
        cursor: str | None = None,
    ) -> ResponseDict:
        """See ``Call.get_calls``."""
        return self._call.get_calls(
            agent_id,
            campaign_id,
            page,
            limit,
            status,
            call_type,
            search,
            disconnect_reason=disconnect_reason,
            date_from=date_from,
            date_to=date_to,
            duration_filter=duration_filter,
            min_duration=min_duration,
            max_duration=max_duration,
            sort_by=sort_by,
            sort_order=sort_order,
            cursor=cursor,
        )

    def iter_calls(
        self,
        agent_id: OneOrMany | None = None,
        campaign_id: OneOrMany | None = None,
        status: OneOrMany | None = None,
        call_type: OneOrMany | None = None,
        search: str | None = None,
        *,
        disconnect_reason: OneOrMany | None = None,
        date_from: Instant | None = None,
        date_to: Instant | None = None,
        duration_filter: OneOrMany | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        sort_by: SortBy | None = None,
        sort_order: SortOrder | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """See ``Call.iter_calls``."""
        return self._call.iter_calls(
            agent_id,
            campaign_id,
            status,
            call_type,
            search,
            disconnect_reason=disconnect_reason,
            date_from=date_from,
            date_to=date_to,
            duration_filter=duration_filter,
            min_duration=min_duration,
            max_duration=max_duration,
            sort_by=sort_by,
            sort_order=sort_order,
            page_size=page_size,
        )

    def search_calls(self, call_ids: list[str]) -> ResponseDict:
        """See ``Call.search_calls``."""
        return self._call.search_calls(call_ids)

    def get_post_call_config(self, agent_id: str) -> ResponseDict:
        """See ``Call.get_post_call_config``."""
        return self._call.get_post_call_config(agent_id)

    def set_post_call_config(
        self,
        agent_id: str,
        summary_prompt: str | None = None,
        disposition_metrics: list[dict[str, Any]] | None = None,
    ) -> ResponseDict:
        """See ``Call.set_post_call_config``."""
        return self._call.set_post_call_config(agent_id, summary_prompt, disposition_metrics)

    # -----------------------------------------------------------------------------------------
    # Audiences (``client.audience`` has the same under the ``Audience`` names)

    def get_audiences(self) -> ResponseDict:
        """See ``Audience.list``."""
        return self._audience.list()

    def get_audience_by_id(self, audience_id: str) -> ResponseDict:
        """See ``Audience.get``."""
        return self._audience.get(audience_id)

    def create_audience(
        self,
        name: str,
        phone_numbers: Sequence[str],
        phone_number_column_name: str = "phoneNumber",
        description: str = "",
        names: Sequence[tuple[str, str]] | None = None,
    ) -> ResponseDict:
        """See ``Audience.create`` (note the different argument order, as in 4.3.1)."""
        return self._audience.create(name, phone_numbers, names, description, phone_number_column_name)

    def delete_audience(self, audience_id: str) -> ResponseDict:
        """See ``Audience.delete``."""
        return self._audience.delete(audience_id)

    def get_audience_members(self, audience_id: str, page: int = 1, offset: int = 10) -> ResponseDict:
        """See ``Audience.get_members``."""
        return self._audience.get_members(audience_id, page, offset)

    def add_audience_members(self, audience_id: str, members: list[dict[str, str]]) -> ResponseDict:
        """Add ``[{phoneNumber, firstName?, lastName?}, ...]``; numbers already present are skipped."""
        return self._request(
            "POST", f"/audience/{segment(audience_id)}/members", json={"members": list(members)}
        )

    # -----------------------------------------------------------------------------------------
    # Phone numbers

    def get_phone_numbers(self) -> ResponseDict:
        """The organization's numbers: ``data = [{_id, attributes: {phoneNumber, provider}, ...}]``.

        A number's ``_id`` is what ``phone_ids`` of a campaign takes.
        """
        return self._request("GET", "/product/phone-numbers")

    # -----------------------------------------------------------------------------------------
    # Campaigns (``client.campaign`` has the same under the ``Campaign`` names)

    def create_campaign(self, campaign_post_request: Body) -> ResponseDict:
        """Create a campaign from a ``POST /campaign`` body (camelCase keys)."""
        return self._request("POST", "/campaign", json=_body(campaign_post_request))

    def new_campaign(
        self,
        name: str,
        agent_id: str,
        audience_id: str,
        phone_ids: Sequence[str],
        description: str = "",
        max_retries: int = 3,
        retry_delay: int = 15,
    ) -> ResponseDict:
        """See ``Campaign.create``."""
        body = campaign_body(name, agent_id, audience_id, phone_ids, description, max_retries, retry_delay)
        return self.create_campaign(body)

    def delete_campaign(self, id: str) -> ResponseDict:
        """See ``Campaign.delete``."""
        return self._campaign.delete(id)

    def get_campaign_by_id(self, id: str) -> ResponseDict:
        """See ``Campaign.get``."""
        return self._campaign.get(id)

    def get_campaigns(self, campaign_get_request: Body | None = None) -> ResponseDict:
        """A page of campaigns. ``{"page": 1, "limit": 10}`` (the defaults) are sent as query parameters.

        4.3.1 puts them in a JSON body on ``GET``, which its HTTP layer never sends (so it always gets
        the first 10); here they take effect.
        """
        request = _body(campaign_get_request) if campaign_get_request is not None else {}
        params: dict[str, str | int | float] = {
            "page": request.get("page") or 1,
            "limit": request.get("limit") or 10,
        }
        return self._request("GET", "/campaign", params=params)

    def start_campaign(self, id: str) -> ResponseDict:
        """See ``Campaign.start``."""
        return self._campaign.start(id)

    def pause_campaign(self, id: str) -> ResponseDict:
        """See ``Campaign.pause``."""
        return self._campaign.pause(id)

    def stop_campaign(self, id: str) -> ResponseDict:
        """See ``Campaign.stop`` (4.3.1 has it on ``Campaign`` only)."""
        return self._campaign.stop(id)
