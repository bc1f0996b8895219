"""Campaigns (an agent calling an audience): the ``Campaign`` class.

Same methods and arguments as ``smallestai.atoms.campaign.Campaign`` (4.3.1)::

    from dispo.sdk import Campaign

    campaign = Campaign()
    camp = campaign.create(
        name="Spring outreach",
        agent_id=agent_id,
        audience_id=audience_id,
        phone_ids=[phone_id],
    )
    campaign.start(camp["data"]["_id"])
"""

from __future__ import annotations

from collections.abc import Sequence

from dispo.sdk._client import BaseClient, ResponseDict, segment


def campaign_body(
    name: str,
    agent_id: str,
    audience_id: str,
    phone_ids: Sequence[str],
    description: str = "",
    max_retries: int = 3,
    retry_delay: int = 15,
) -> dict[str, object]:
    """The ``POST /campaign`` body, as the official client builds it."""
    return {
        "name": name,
        "agentId": agent_id,
        "audienceId": audience_id,
        "phoneNumberIds": list(phone_ids),
        "description": description,
        "maxRetries": max_retries,
        "retryDelay": retry_delay,
    }


class Campaign(BaseClient):
    """Create, read, list, delete, start, pause and stop campaigns (``/campaign``)."""

    def create(
        self,
        name: str,
        agent_id: str,
        audience_id: str,
        phone_ids: Sequence[str],
        description: str = "",
        max_retries: int = 3,
        retry_delay: int = 15,
    ) -> ResponseDict:
        """A new campaign in ``draft``; ``data`` is the campaign, with its ``_id``.

        ``max_retries`` (0-10) re-dials unanswered contacts ``retry_delay`` minutes (1-1440) apart.
        """
        body = campaign_body(name, agent_id, audience_id, phone_ids, description, max_retries, retry_delay)
        return self._request("POST", "/campaign", json=body)

    def get(self, campaign_id: str) -> ResponseDict:
        """One campaign: ``data = {campaign, events, metrics}``."""
        return self._request("GET", f"/campaign/{segment(campaign_id)}")

    def delete(self, campaign_id: str) -> ResponseDict:
        """Delete a campaign: queued contacts are cancelled; it stays readable with status ``deleted``."""
        return self._request("DELETE", f"/campaign/{segment(campaign_id)}")

    def start(self, campaign_id: str) -> ResponseDict:
        """Start (or resume) a campaign (202); dialling happens in the background.

        Raises ``ConflictError`` for a running, completed or deleted campaign.
        """
        return self._request("POST", f"/campaign/{segment(campaign_id)}/start")

    def stop(self, campaign_id: str) -> ResponseDict:
        """Stop a campaign for good: queued contacts are cancelled and it becomes ``completed``."""
        return self._request("POST", f"/campaign/{segment(campaign_id)}/stop")

    def pause(self, campaign_id: str) -> ResponseDict:
        """Pause a campaign; ``start`` resumes it."""
        return self._request("POST", f"/campaign/{segment(campaign_id)}/pause")

    # Last, so that the method does not shadow the built-in `list` in the annotations above.
    def list(self, limit: int = 50) -> ResponseDict:
        """The organization's campaigns, newest first: ``data = {campaigns, pagination}``."""
        return self._request("GET", "/campaign", params={"limit": limit})
