"""One transaction per use case: everything a use case changes commits together or not at all."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from waitlist.adapters import repository


class UnitOfWork:
    providers: repository.ProviderRepository
    patients: repository.PatientRepository
    waitlist: repository.WaitlistRepository
    cancellations: repository.CancellationRepository
    offers: repository.OfferRepository
    outbox: repository.OutboxRepository
    events: repository.EventLog
    replies: repository.ReplyLog
    session: Session

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        # one UnitOfWork per thread of work; the factory (and its engine) is shared
        self.session_factory = session_factory

    def __enter__(self) -> UnitOfWork:
        self.session = self.session_factory()
        self.providers = repository.ProviderRepository(self.session)
        self.patients = repository.PatientRepository(self.session)
        self.waitlist = repository.WaitlistRepository(self.session)
        self.cancellations = repository.CancellationRepository(self.session)
        self.offers = repository.OfferRepository(self.session)
        self.outbox = repository.OutboxRepository(self.session)
        self.events = repository.EventLog(self.session)
        self.replies = repository.ReplyLog(self.session)
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
        self.session.commit()

    def flush(self) -> None:
        self.session.flush()
