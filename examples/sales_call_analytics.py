"""The Post-Call Analytics page's "Complete Example: Sales Call Analytics", verbatim.

Run it against Dispo by setting only the base URL and the key (``make demo`` does it all):

    SMALLEST_BASE_URL=http://127.0.0.1:8000/api/v1 SMALLEST_API_KEY=sk_... python examples/sales_call_analytics.py
"""

import time
from smallestai.atoms import AtomsClient
from smallestai.atoms.call import Call
from smallestai.atoms.audience import Audience
from smallestai.atoms.campaign import Campaign

client = AtomsClient()
call = Call()
audience = Audience()
campaign = Campaign()

# 1. Create agent
agent = client.new_agent(
    name=f"Sales Agent {int(time.time())}",
    prompt="You are a sales agent. Ask if interested and get their name.",
    description="Testing disposition metrics"
)
agent_id = agent.data

# 2. Configure disposition metrics
call.set_post_call_config(
    agent_id=agent_id,
    summary_prompt="Summarize this sales call briefly.",
    disposition_metrics=[
        {
            "identifier": "user_interested",
            "dispositionMetricPrompt": "Was the user interested? yes, no, or unclear",
            "dispositionValues": {"type": "ENUM"},
            "choices": ["yes", "no", "unclear"]
        },
        {
            "identifier": "user_name",
            "dispositionMetricPrompt": "What is the user's name? Return 'unknown' if not mentioned.",
            "dispositionValues": {"type": "STRING"}
        }
    ]
)

# 3. Create audience and campaign
phones = client.get_phone_numbers()
phone_id = phones["data"][0]["_id"]

aud = audience.create(
    name=f"Test Audience {int(time.time())}",
    phone_numbers=["+916366821717"],
    names=[("Test", "User")]
)
audience_id = aud["data"]["_id"]

camp = campaign.create(
    name=f"Analytics Test {int(time.time())}",
    agent_id=agent_id,
    audience_id=audience_id,
    phone_ids=[phone_id]
)
campaign_id = camp["data"]["_id"]

# 4. Start campaign
campaign.start(campaign_id)
print("Call in progress...")

# 5. Wait for completion
time.sleep(60)

# 6. Get call with analytics
calls = call.get_calls(agent_id=agent_id, limit=1)
call_id = calls["data"]["logs"][0]["callId"]

details = call.get_call(call_id)
data = details["data"]

# 7. Display results
print(f"\nCall Status: {data['status']}")
print(f"Duration: {data['duration']}s")

print("\nTranscript:")
for line in data.get("transcript", []):
    print(f"  [{line['role'].upper()}]: {line['content']}")

analytics = data.get("postCallAnalytics", {})
if analytics:
    print(f"\nSummary: {analytics.get('summary')}")
    print("\nDisposition Metrics:")
    for m in analytics.get("dispositionMetrics", []):
        print(f"  {m['identifier']}: {m['value']}")
        print(f"    Confidence: {m['confidence']}")
        print(f"    Reasoning: {m['reasoning']}")

# 8. Cleanup
campaign.delete(campaign_id)
audience.delete(audience_id)
client.delete_agent(id=agent_id)
