"""Request-scoped dependencies: settings, the database session, storage and the publisher."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from shared.settings import Settings
from shared.storage import Storage
from worker.publisher import Publisher


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


def get_storage(request: Request) -> Storage:
    return request.app.state.storage


def get_publisher(request: Request) -> Publisher:
    return request.app.state.publisher


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_db)]
StorageDep = Annotated[Storage, Depends(get_storage)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
