"""The scheduling domain: plain Python, no I/O.

The database enforces the claim invariants too (row locks and partial unique indexes, see
adapters/orm.py); the rules here decide *what* should happen, the database makes sure it happens once.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class DomainError(Exception):
    """A request that breaks a business rule; the message is safe to show to staff."""


class Actor(str, enum.Enum):
    STAFF = "staff"
    PATIENT = "patient"
    SYSTEM = "system"


class EntryStatus(str, enum.Enum):
    ACTIVE = "active"
    FULFILLED = "fulfilled"
    REMOVED = "removed"


class CancellationStatus(str, enum.Enum):
    OPEN = "open"
    FILLED = "filled"
    EXPIRED = "expired"
    ABORTED = "aborted"


class OfferState(str, enum.Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"
    # closed without penalty: its text never left because of our outage or Twilio's, so the patient
    # keeps their place (may be offered this slot again) and the offer counts against no cap
    RELEASED = "released"


class ClaimOutcome(str, enum.Enum):
    CLAIMED = "claimed"
    LATE_CLAIMED = "late_claimed"  # the hold had run out, but the slot was still open
    TOO_LATE = "too_late"
    NO_OPEN_OFFER = "no_open_offer"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --------------------------------------------------------------------------------------------------
# Domain events: what happened, recorded by the aggregate; the unit of work turns them into outbox
# and audit rows in the same transaction (service_layer/handlers.py).


class Notice(str, enum.Enum):
    """The text a patient gets when an offer they have seen closes without their answer."""

    SLOT_FILLED = "slot_filled"
    OFFER_WITHDRAWN = "offer_withdrawn"


@dataclass(frozen=True)
class Event:
    pass


# Events carry the offer itself: a new offer gets its id only when the unit of work flushes.


@dataclass(frozen=True)
class OfferMade(Event):
    offer: Offer
    score: int


@dataclass(frozen=True)
class OfferSent(Event):
    offer: Offer


@dataclass(frozen=True)
class OfferClosed(Event):
    offer: Offer
    # the patient had the offer in hand and is told it is gone (None: nothing to tell them)
    notice: Notice | None
    # the slot is still open and this offer's seat may go to the next patient
    seat_freed: bool


@dataclass(frozen=True)
class NoticeDue(Event):
    """The offer's text left after the offer had closed (a claim raced the send)."""

    offer: Offer
    notice: Notice


@dataclass(frozen=True)
class CancellationFilled(Event):
    offer: Offer
    late: bool


@dataclass(frozen=True)
class BatchSized(Event):
    """Offers went out under a batch plan: staff see why the batch had the size it had."""

    cancellation_id: int
    plan: BatchPlan
    offers_made: int
    occurred_at: datetime


# --------------------------------------------------------------------------------------------------
# Policies (settings turned into rules)


@dataclass(frozen=True)
class ContactHours:
    """Local clock window in which an offer may be sent."""

    start: time = time(8, 0)
    end: time = time(20, 0)

    def is_open(self, now: datetime, tz: ZoneInfo) -> bool:
        local = now.astimezone(tz).time()
        return self.start <= local < self.end

    def next_opening(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The earliest moment >= now at which offers may go out."""
        if self.is_open(now, tz):
            return now
        local = now.astimezone(tz)
        day = local.date() if local.time() < self.start else local.date() + timedelta(days=1)
        return datetime.combine(day, self.start, tzinfo=tz)

    def open_between(self, start: datetime, end: datetime, tz: ZoneInfo) -> timedelta:
        """How much of [start, end) lies inside contact hours: the time in which offers can go
        out and, mostly, be answered."""
        total = timedelta(0)
        day = start.astimezone(tz).date()
        while True:
            opens = datetime.combine(day, self.start, tzinfo=tz)
            if opens >= end:
                return total
            closes = datetime.combine(day, self.end, tzinfo=tz)
            overlap = min(closes, end) - max(opens, start)
            if overlap > timedelta(0):
                total += overlap
            day += timedelta(days=1)


@dataclass(frozen=True)
class ScoringPolicy:
    """Priority score. The same numbers are rendered into SQL by the repository."""

    urgent_points: int = 30
    max_boost: int = 40
    # (days away at least, points), checked from the first row down
    appointment_tiers: tuple[tuple[int, int], ...] = ((180, 20), (90, 10), (30, 5))
    points_per_30_days_waiting: int = 1
    max_waiting_points: int = 10

    def parts(self, entry: WaitlistEntry, now: datetime) -> dict[str, int]:
        appointment = 0
        if entry.current_appointment_at is not None:
            days_away = (entry.current_appointment_at - now).days
            for minimum_days, points in self.appointment_tiers:
                if days_away >= minimum_days:
                    appointment = points
                    break
        waited_days = max(0, (now - entry.joined_at).days)
        waiting = min(
            self.max_waiting_points, (waited_days // 30) * self.points_per_30_days_waiting
        )
        return {
            "urgent": self.urgent_points if entry.urgent else 0,
            "boost": entry.manual_boost,
            "appointment": appointment,
            "waiting": waiting,
        }

    def score(self, entry: WaitlistEntry, now: datetime) -> int:
        return sum(self.parts(entry, now).values())


@dataclass(frozen=True)
class BatchPlan:
    """How many offers a slot should have out at once, how long each is held, and why."""

    size: int
    hold: timedelta
    reason: str


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _duration_text(span: timedelta) -> str:
    minutes = _minutes(span)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d} min" if rest else f"{hours} h"


@dataclass(frozen=True)
class AcceptanceEstimate:
    """How this clinic's patients answer offers lately, blended with a prior (a Beta prior on the
    acceptance rate, worth `prior_weight` offers), so a new clinic starts from the prior and a
    busy one soon speaks for itself."""

    rate: float  # share of answered-or-expired offers that were accepted
    reply: timedelta  # how long an accepting patient takes to say yes (median)
    offers: int  # how many of the clinic's own offers the estimate rests on

    @classmethod
    def blend(
        cls, offers: int, accepted: int, reply: timedelta | None, rule: AdaptiveRule
    ) -> AcceptanceEstimate:
        weight = rule.prior_weight
        rate = (accepted + rule.prior_acceptance * weight) / (offers + weight)
        # the prior's reply time counts as many yeses as the prior's offers would have given
        prior_yeses = rule.prior_acceptance * weight
        if reply is None or accepted == 0:
            blended = rule.prior_reply
        else:
            blended = (reply * accepted + rule.prior_reply * prior_yeses) / (accepted + prior_yeses)
        return cls(rate=rate, reply=blended, offers=offers)


@dataclass(frozen=True)
class AdaptiveRule:
    """BATCH_MODE=adaptive: size each batch and its hold from the time left and the acceptance
    estimate, so that the slot fills in time with high probability and no more patients than
    needed are texted (docs/adaptive-offering.md)."""

    # chance, under the estimate, that the offers planned inside the window bring a yes
    target: float = 0.9
    # aim to fill within this long even when the cutoff is days away: a slot filled early is
    # easier for the patient to take and for the clinic to prepare
    horizon: timedelta = timedelta(minutes=40)
    min_batch: int = 1
    max_batch: int = 20
    min_hold: timedelta = timedelta(minutes=5)
    max_hold: timedelta = timedelta(minutes=30)
    # priors, until the clinic's own history outweighs them (Epic Fast Pass: 8-11% accepted)
    prior_acceptance: float = 0.10
    prior_weight: int = 50
    prior_reply: timedelta = timedelta(minutes=10)
    # how far back the clinic's own history is read
    history: timedelta = timedelta(days=28)

    def offers_needed(self, rate: float) -> int:
        """Offers that bring at least one yes with probability `target`, each yes independent."""
        rate = min(max(rate, 0.005), 0.99)
        return max(1, math.ceil(math.log(1 - self.target) / math.log(1 - rate)))

    def plan(self, time_left: timedelta, estimate: AcceptanceEstimate) -> BatchPlan:
        """time_left: contact hours before offering stops for this slot."""
        window = min(time_left, self.horizon)
        # the hold gives an accepting patient time to answer, but never outlives the window
        hold = min(max(estimate.reply, self.min_hold), self.max_hold)
        hold = max(self.min_hold, min(hold, window))
        # an offer sent later than a reply time before the window ends is unlikely to be
        # answered inside it: only the rounds before that count
        sending = window - estimate.reply
        rounds = max(1, int(sending / hold)) if sending > timedelta(0) else 1
        needed = self.offers_needed(estimate.rate)
        size = min(self.max_batch, max(self.min_batch, math.ceil(needed / rounds)))
        within = "before offering stops" if window < self.horizon else "as aimed"
        reason = (
            f"{size} at a time, {_minutes(hold)}-minute holds: {_duration_text(time_left)} of "
            f"contact hours left before offering stops, so the aim is a yes within "
            f"{_duration_text(window)} ({within}); about {estimate.rate:.0%} of offers are "
            f"accepted (the last {estimate.offers} offers with the prior), so {needed} offers "
            f"give a {self.target:.0%} chance, and {rounds} round{'s' if rounds != 1 else ''} "
            f"of {_minutes(hold)} min fit"
        )
        if size == self.max_batch and needed > rounds * size:
            reason += f"; capped at {self.max_batch}"
        return BatchPlan(size=size, hold=hold, reason=reason)


@dataclass(frozen=True)
class OfferingPolicy:
    batch_size: int = 3
    hold: timedelta = timedelta(minutes=7)
    lead_time: timedelta = timedelta(minutes=60)
    contact_hours: ContactHours = field(default_factory=ContactHours)
    daily_cap: int = 3
    weekly_cap: int = 6
    strict_batches: bool = False
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/New_York"))
    # BATCH_MODE=adaptive: each batch sized by this rule (batch_size is then its ceiling, so that
    # the sweep looks at every slot with a seat that might be free)
    adaptive: AdaptiveRule | None = None

    @property
    def mode(self) -> str:
        if self.adaptive is not None:
            return "adaptive"
        return "strict" if self.strict_batches else "rolling"

    def fixed_plan(self) -> BatchPlan:
        kind = "whole batches" if self.strict_batches else "rolling seats"
        return BatchPlan(
            size=self.batch_size,
            hold=self.hold,
            reason=f"{self.batch_size} at a time, {_minutes(self.hold)}-minute holds "
            f"({kind}, BATCH_MODE={self.mode})",
        )

    def seats_to_fill(self, pending_offers: int, size: int | None = None) -> int:
        size = self.batch_size if size is None else size
        if self.strict_batches:
            # strict mode: the next batch goes out only when the whole previous one has resolved
            return size if pending_offers == 0 else 0
        return max(0, size - pending_offers)

    def offering_closes_at(self, slot_start: datetime) -> datetime:
        return slot_start - self.lead_time


# --------------------------------------------------------------------------------------------------
# Entities


@dataclass
class Provider:
    name: str
    provider_type: str
    id: int | None = None
    created_at: datetime | None = None


@dataclass
class Patient:
    phone: str
    display_name: str
    preferred_language: str = "en"
    consent_source: str | None = None
    consented_at: datetime | None = None
    opted_out: bool = False
    opted_out_at: datetime | None = None
    # someone else answers this number: never text it, whatever it says, until staff fix the record
    wrong_number_at: datetime | None = None
    id: int | None = None
    created_at: datetime | None = None

    @property
    def may_be_texted(self) -> bool:
        return not self.opted_out and self.wrong_number_at is None

    def opt_out(self, now: datetime) -> bool:
        """Returns True when this changed anything."""
        if self.opted_out:
            return False
        self.opted_out, self.opted_out_at = True, now
        return True

    def opt_in(self, now: datetime) -> bool:
        """START or "keep texting me". Refused for a number reported as the wrong person's."""
        if not self.opted_out or self.wrong_number_at is not None:
            return False
        self.opted_out, self.opted_out_at = False, None
        self.consent_source, self.consented_at = "sms_start", now
        return True

    def change_language(self, language: str) -> bool:
        """The patient writes in another language: answer in it from now on."""
        if language == self.preferred_language:
            return False
        self.preferred_language = language
        return True

    def report_wrong_number(self, now: datetime) -> bool:
        """Someone else answers this number (a wrong number, or the patient has died)."""
        changed = self.wrong_number_at is None
        self.opt_out(now)
        if changed:
            self.wrong_number_at = now
        return changed

    def correct_number(self, phone: str, now: datetime) -> None:
        """Staff fixed the record: a new number (consent given to staff), or this one confirmed."""
        if phone != self.phone:
            self.phone = phone
            self.opted_out, self.opted_out_at = False, None
            self.consent_source, self.consented_at = "staff", now
        self.wrong_number_at = None


@dataclass
class Availability:
    not_before: date | None = None
    not_after: date | None = None
    days_of_week: list[int] | None = None  # 0 = Monday ... 6 = Sunday
    earliest_time: time | None = None
    latest_time: time | None = None


@dataclass
class WaitlistEntry:
    patient_id: int
    joined_at: datetime
    provider_ids: list[int] | None = None
    provider_type: str | None = None
    location: str | None = None
    current_appointment_at: datetime | None = None
    not_before: date | None = None
    not_after: date | None = None
    days_of_week: list[int] | None = None
    earliest_time: time | None = None
    latest_time: time | None = None
    urgent: bool = False
    manual_boost: int = 0
    status: EntryStatus = EntryStatus.ACTIVE
    notes: str | None = None
    id: int | None = None
    updated_at: datetime | None = None

    def accepts(self, slot: Slot, tz: ZoneInfo) -> bool:
        """Preference and availability rules for one slot (the SQL in the repository mirrors this)."""
        if self.status != EntryStatus.ACTIVE:
            return False
        wants_provider = bool(self.provider_ids) or self.provider_type is not None
        if wants_provider and not (
            (self.provider_ids and slot.provider_id in self.provider_ids)
            or (self.provider_type is not None and self.provider_type == slot.provider_type)
        ):
            return False
        if self.location is not None and self.location.casefold() != slot.location.casefold():
            return False
        if self.current_appointment_at is not None and slot.start >= self.current_appointment_at:
            return False
        local_start, local_end = slot.start.astimezone(tz), slot.end.astimezone(tz)
        if self.not_before is not None and local_start.date() < self.not_before:
            return False
        if self.not_after is not None and local_start.date() > self.not_after:
            return False
        if self.days_of_week and local_start.weekday() not in self.days_of_week:
            return False
        if self.earliest_time is not None and local_start.time() < self.earliest_time:
            return False
        if self.latest_time is not None and local_end.time() > self.latest_time:
            return False
        return True

    def update_availability(self, availability: Availability) -> None:
        for name in ("not_before", "not_after", "days_of_week", "earliest_time", "latest_time"):
            setattr(self, name, getattr(availability, name))
        self._check_dates()

    def defer_until(self, not_before: date, now: datetime) -> None:
        self.not_before, self.updated_at = not_before, now
        if self.not_after is not None and self.not_after < not_before:
            # the patient's newer word wins over an older end date
            self.not_after = None

    def set_boost(self, boost: int, policy: ScoringPolicy) -> None:
        if not 0 <= boost <= policy.max_boost:
            raise DomainError(f"manual_boost must be between 0 and {policy.max_boost}")
        self.manual_boost = boost

    def remove(self, now: datetime) -> bool:
        if self.status != EntryStatus.ACTIVE:
            return False
        self.status, self.updated_at = EntryStatus.REMOVED, now
        return True

    def fulfil(self, now: datetime) -> None:
        self.status, self.updated_at = EntryStatus.FULFILLED, now

    def _check_dates(self) -> None:
        if self.not_before and self.not_after and self.not_after < self.not_before:
            raise DomainError("not_after must not be before not_before")


@dataclass(frozen=True)
class Slot:
    provider_id: int
    provider_type: str
    location: str
    start: datetime
    end: datetime


@dataclass
class Offer:
    cancellation_id: int
    entry_id: int
    patient_id: int
    created_at: datetime
    state: OfferState = OfferState.PENDING
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    responded_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    delivery_status: str | None = None
    # the hold this offer's batch was planned with (None: the policy's fixed hold)
    hold: timedelta | None = None
    id: int | None = None

    @property
    def is_pending(self) -> bool:
        return self.state == OfferState.PENDING

    @property
    def was_sent(self) -> bool:
        """Only an offer whose text left can be answered: the patient has never seen the others."""
        return self.sent_at is not None

    def hold_has_run_out(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def accept(self, now: datetime) -> None:
        # an expired hold may still be accepted: a late yes wins while the slot is open
        if self.state not in (OfferState.PENDING, OfferState.EXPIRED) or not self.was_sent:
            raise DomainError(f"offer {self.id} cannot be accepted ({self.state.value})")
        self.state, self.responded_at, self.closed_at = OfferState.ACCEPTED, now, now

    def close(self, state: OfferState, now: datetime, reason: str | None = None) -> None:
        if not self.is_pending:
            raise DomainError(f"offer {self.id} is already {self.state.value}")
        self.state, self.closed_at, self.close_reason = state, now, reason
        if state == OfferState.DECLINED:
            self.responded_at = now


@dataclass
class ClaimResult:
    outcome: ClaimOutcome
    offer: Offer | None
    withdrawn: list[Offer] = field(default_factory=list)


@dataclass
class SendResult:
    """What recording a sent offer text did."""

    offer: Offer
    # the text left after the offer had closed (a claim raced the send): tell the patient
    closed_meanwhile: bool


@dataclass
class Cancellation:
    """Aggregate root for one open slot and every offer made for it.

    Every change records a domain event in `events`; the unit of work turns them into outbox and
    audit rows when it commits, so no use case can forget a notice or an audit line.
    """

    provider_id: int
    location: str
    slot_start: datetime
    slot_end: datetime
    created_at: datetime
    status: CancellationStatus = CancellationStatus.OPEN
    filled_by_patient_id: int | None = None
    closed_at: datetime | None = None
    # staff copied the booking into the practice's own schedule
    schedule_entered_at: datetime | None = None
    schedule_entered_by: str | None = None
    # why the latest batch had the size and hold it had (shown to staff)
    batch_reason: str | None = None
    offers: list[Offer] = field(default_factory=list)
    id: int | None = None
    events: list[Event] = field(default_factory=list, compare=False, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status == CancellationStatus.OPEN

    def pending_offers(self) -> list[Offer]:
        return [o for o in self.offers if o.is_pending]

    def slot(self, provider: Provider) -> Slot:
        """The slot as the eligibility rules see it: with its provider's type."""
        return Slot(
            provider_id=provider.id or 0,
            provider_type=provider.provider_type,
            location=self.location,
            start=self.slot_start,
            end=self.slot_end,
        )

    def offer(self, offer_id: int) -> Offer:
        for candidate in self.offers:
            if candidate.id == offer_id:
                return candidate
        raise DomainError(f"offer {offer_id} does not belong to cancellation {self.id}")

    def claim(self, offer_id: int, now: datetime) -> ClaimResult:
        """The patient holding `offer_id` said yes. First yes while the slot is open wins."""
        offer = self.offer(offer_id)
        if offer.state == OfferState.ACCEPTED:
            return ClaimResult(ClaimOutcome.CLAIMED, offer)  # a repeated yes from the winner
        if not offer.was_sent:
            return ClaimResult(ClaimOutcome.NO_OPEN_OFFER, offer)  # they never saw it
        if not self.is_open:
            return ClaimResult(ClaimOutcome.TOO_LATE, offer)
        if offer.state not in (OfferState.PENDING, OfferState.EXPIRED):
            return ClaimResult(ClaimOutcome.NO_OPEN_OFFER, offer)
        late = offer.state == OfferState.EXPIRED or offer.hold_has_run_out(now)
        offer.accept(now)
        self.status, self.filled_by_patient_id, self.closed_at = (
            CancellationStatus.FILLED,
            offer.patient_id,
            now,
        )
        self.events.append(CancellationFilled(offer, late=late))
        withdrawn = self._withdraw_pending(now, "filled", Notice.SLOT_FILLED)
        return ClaimResult(
            ClaimOutcome.LATE_CLAIMED if late else ClaimOutcome.CLAIMED, offer, withdrawn
        )

    def decline(self, offer_id: int, now: datetime, reason: str = "declined") -> Offer:
        return self._close(offer_id, OfferState.DECLINED, now, reason)

    def expire_hold(self, offer_id: int, now: datetime) -> Offer:
        return self._close(offer_id, OfferState.EXPIRED, now, "hold ran out")

    def fail_offer(self, offer_id: int, now: datetime, reason: str) -> Offer:
        return self._close(offer_id, OfferState.FAILED, now, reason)

    def withdraw_offer(self, offer_id: int, now: datetime, reason: str) -> Offer:
        return self._close(offer_id, OfferState.WITHDRAWN, now, reason)

    def release_unsent(self, offer_id: int, now: datetime, reason: str) -> Offer:
        """Close an offer whose text never left, without penalty for the patient."""
        offer = self.offer(offer_id)
        if offer.was_sent:
            raise DomainError(f"offer {offer_id} was already sent")
        return self._close(offer_id, OfferState.RELEASED, now, reason)

    def record_sent(self, offer_id: int, now: datetime, hold: timedelta) -> SendResult:
        """The offer's text left now: its hold starts now, not when the offer was queued."""
        offer = self.offer(offer_id)
        if offer.was_sent:
            return SendResult(offer, closed_meanwhile=False)  # a repeated report of one send
        offer.sent_at = now
        hold = offer.hold or hold  # a planned batch carries its own hold
        if not offer.is_pending:
            # closed while its text was on the way (filled, aborted): the patient has it now
            notice = Notice.SLOT_FILLED if self.status == CancellationStatus.FILLED else None
            if notice is None and self.status != CancellationStatus.OPEN:
                notice = Notice.OFFER_WITHDRAWN
            if notice is not None:
                self.events.append(NoticeDue(offer, notice))
            return SendResult(offer, closed_meanwhile=True)
        offer.expires_at = now + hold
        self.events.append(OfferSent(offer))
        return SendResult(offer, closed_meanwhile=False)

    def mark_entered_in_schedule(self, now: datetime, by: str) -> bool:
        """Staff entered the booking in the practice's schedule. True when this changed anything;
        a second click keeps the first one's time and name."""
        if self.status != CancellationStatus.FILLED:
            raise DomainError(f"cancellation {self.id} is {self.status.value}, not filled")
        if self.schedule_entered_at is not None:
            return False
        self.schedule_entered_at, self.schedule_entered_by = now, by
        return True

    def abort(self, now: datetime) -> list[Offer]:
        if not self.is_open:
            raise DomainError(f"cancellation {self.id} is already {self.status.value}")
        self.status, self.closed_at = CancellationStatus.ABORTED, now
        return self._withdraw_pending(now, "aborted", Notice.OFFER_WITHDRAWN)

    def expire_if_too_close(self, now: datetime, policy: OfferingPolicy) -> list[Offer] | None:
        """Stop offering when the slot starts too soon. Returns the withdrawn offers, or None."""
        if not self.is_open or now < policy.offering_closes_at(self.slot_start):
            return None
        self.status, self.closed_at = CancellationStatus.EXPIRED, now
        return self._withdraw_pending(now, "expired", Notice.OFFER_WITHDRAWN)

    def seats_to_fill(
        self, now: datetime, policy: OfferingPolicy, plan: BatchPlan | None = None
    ) -> int:
        if not self.is_open or now >= policy.offering_closes_at(self.slot_start):
            return 0
        if not policy.contact_hours.is_open(now, policy.timezone):
            return 0
        return policy.seats_to_fill(len(self.pending_offers()), plan.size if plan else None)

    def plan_batch(
        self, now: datetime, policy: OfferingPolicy, estimate: AcceptanceEstimate | None
    ) -> BatchPlan:
        """The size and hold of the next batch: fixed, or from the adaptive rule."""
        if policy.adaptive is None:
            return policy.fixed_plan()
        rule = policy.adaptive
        if estimate is None:
            estimate = AcceptanceEstimate.blend(0, 0, None, rule)
        closes = policy.offering_closes_at(self.slot_start)
        left = policy.contact_hours.open_between(now, closes, policy.timezone)
        return rule.plan(left, estimate)

    def offer_batch(
        self, entries: list[tuple[WaitlistEntry, int]], now: datetime, plan: BatchPlan
    ) -> list[Offer]:
        """Offer the slot to these (entry, score) pairs under `plan`, and say why."""
        made = [self.make_offer(entry, now, score, plan.hold) for entry, score in entries]
        if made:
            self.batch_reason = plan.reason
            self.events.append(BatchSized(self.id or 0, plan, len(made), now))
        return made

    def make_offer(
        self, entry: WaitlistEntry, now: datetime, score: int = 0, hold: timedelta | None = None
    ) -> Offer:
        if any(
            o.patient_id == entry.patient_id and o.state != OfferState.RELEASED for o in self.offers
        ):
            raise DomainError(f"patient {entry.patient_id} was already offered this slot")
        offer = Offer(
            cancellation_id=self.id or 0,
            entry_id=entry.id or 0,
            patient_id=entry.patient_id,
            created_at=now,
            hold=hold,
        )
        self.offers.append(offer)
        self.events.append(OfferMade(offer, score))
        return offer

    def _close(self, offer_id: int, state: OfferState, now: datetime, reason: str) -> Offer:
        offer = self.offer(offer_id)
        offer.close(state, now, reason)
        self.events.append(OfferClosed(offer, notice=None, seat_freed=self.is_open))
        return offer

    def _withdraw_pending(self, now: datetime, reason: str, notice: Notice) -> list[Offer]:
        withdrawn = self.pending_offers()
        for offer in withdrawn:
            offer.close(OfferState.WITHDRAWN, now, reason)
            # only a patient who has the text in hand needs to hear that it is gone
            told = notice if offer.was_sent else None
            self.events.append(OfferClosed(offer, notice=told, seat_freed=False))
        return withdrawn


def validate_slot(slot_start: datetime, slot_end: datetime, now: datetime) -> None:
    if slot_start.tzinfo is None or slot_end.tzinfo is None:
        raise DomainError(
            "slot_start and slot_end need a UTC offset, e.g. 2026-12-01T15:30:00-05:00"
        )
    if slot_end <= slot_start:
        raise DomainError("slot_end must be after slot_start")
    if slot_start <= now:
        raise DomainError("slot_start is in the past")
