"""Call legs and the standard parameters Twilio sends with every voice request."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

API_VERSION = "2010-04-01"


def new_sid(prefix: str) -> str:
    """Twilio SIDs: two letters and 32 hex digits (CA... calls, AC... accounts, QU... queues, RE... recordings)."""
    return prefix + uuid.uuid4().hex


@dataclass
class CallLeg:
    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str = "inbound"
    parent_sid: str | None = None  # set on the agent leg a <Dial> creates

    def params(self, status: str = "in-progress", **extra) -> dict:
        params = {"CallSid": self.sid, "AccountSid": self.account_sid, "From": self.from_, "To": self.to,
                  "CallStatus": status, "Direction": self.direction, "ApiVersion": API_VERSION}
        if self.parent_sid:
            params["ParentCallSid"] = self.parent_sid
        params.update({k: str(v) for k, v in extra.items() if v is not None})
        return params

    def dialled(self, number: str) -> "CallLeg":
        """The child leg of a <Dial>: its own CallSid, the caller's number as caller ID, the parent's SID."""
        return CallLeg(new_sid("CA"), self.account_sid, self.from_, number, "outbound-dial", self.sid)
