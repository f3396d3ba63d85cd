"""One transaction per use case: everything a use case changes commits together or not at all.

At commit the unit of work collects the domain events of every aggregate it handed out and lets the
handler table (handlers.py) write their outbox and audit rows in the same transaction. Seats freed
by those events are kept in `seats_freed`, for the caller to refill after the commit.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from waitlist.adapters import repository
from waitlist.adapters.transcripts import Transcripts
from waitlist.domain import model
from waitlist.service_layer import handlers


class UnitOfWork:
    providers: repository.ProviderRepository
    patients: repository.PatientRepository
    waitlist: repository.WaitlistRepository
    cancellations: repository.CancellationRepository
    offers: repository.OfferRepository
    outbox: repository.OutboxRepository
    messaging: repository.MessagingHealthRepository
    events: repository.EventLog
    replies: repository.ReplyLog
    idempotency: repository.IdempotencyKeys
    staff_accounts: repository.StaffAccounts
    transcripts: Transcripts
    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        # one UnitOfWork per thread of work; the factory (and its engine) is shared
        self.session_factory = session_factory
        self.seats_freed: set[int] = set()
        # whether any transaction of this unit of work committed (a read-only use case never does)
        self.committed = False

    def __enter__(self) -> UnitOfWork:
        self.session = self.session_factory()
        self.providers = repository.ProviderRepository(self.session)
        self.patients = repository.PatientRepository(self.session)
        self.waitlist = repository.WaitlistRepository(self.session)
        self.cancellations = repository.CancellationRepository(self.session)
        self.offers = repository.OfferRepository(self.session)
        self.outbox = repository.OutboxRepository(self.session)
        self.messaging = repository.MessagingHealthRepository(self.session)
        self.events = repository.EventLog(self.session)
        self.replies = repository.ReplyLog(self.session)
        self.idempotency = repository.IdempotencyKeys(self.session)
        self.staff_accounts = repository.StaffAccounts(self.session)
        self.transcripts = Transcripts(self.session)
        self._pending_seats: set[int] = set()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # anything not explicitly committed is rolled back, so an error never half-writes
        self.session.rollback()
        self.session.close()

    @staticmethod
    def session_factory_for(engine: Engine) -> sessionmaker[Session]:
        return sessionmaker(bind=engine, expire_on_commit=False)

    def commit(self) -> None:
        self.publish_events()
        self.session.commit()
        self.committed = True
        self.seats_freed |= self._pending_seats
        self._pending_seats = set()

    def flush(self) -> None:
        self.session.flush()

    def take_seats_freed(self) -> set[int]:
        """Cancellations whose seats were freed by committed work, handed out once."""
        freed, self.seats_freed = self.seats_freed, set()
        return freed

    def publish_events(self) -> None:
        """Write the rows the aggregates' events call for (commit does this; a use case may do it
        earlier when it reads what the handlers change, e.g. the winner's fulfilled entry)."""
        self.session.flush()  # new offers get their ids before handlers write rows naming them
        while True:
            batch: list[model.Event] = []
            for cancellation in self.cancellations.seen:
                batch.extend(cancellation.events)
                cancellation.events.clear()
            if not batch:
                return
            for event in batch:
                handlers.handle(event, self)

    @property
    def pending_seats(self) -> set[int]:
        """Seats freed in this transaction (handlers add to it; moved to seats_freed at commit)."""
        return self._pending_seats
