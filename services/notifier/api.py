"""Internal HTTP API of the notifier (port 8105, not routed by the edge): list and replay deliveries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query

from services.notifier.store import DeliveryStore

State = Literal["pending", "delivering", "delivered", "dead"]


def internal_router(store: DeliveryStore, wake: Callable[[], None]) -> APIRouter:
    """Routes under /internal/callbacks over ``store``; ``wake`` nudges the dispatcher after a replay."""
    router = APIRouter(prefix="/internal/callbacks", tags=["internal"])

    @router.get("")
    async def list_callbacks(
        state: State | None = None,
        account_sid: str | None = None,
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        records = await store.list(state=state, account_sid=account_sid, limit=limit)
        return {"callbacks": [r.as_json() for r in records]}

    @router.get("/{delivery_id}")
    async def show_callback(delivery_id: int) -> dict[str, Any]:
        record = await store.get(delivery_id)
        if record is None:
            raise HTTPException(status_code=404, detail="no such delivery")
        return record.as_json()

    @router.post("/{delivery_id}/replay")
    async def replay_callback(delivery_id: int) -> dict[str, Any]:
        if not await store.replay(delivery_id):
            if await store.get(delivery_id) is None:
                raise HTTPException(status_code=404, detail="no such delivery")
            raise HTTPException(status_code=409, detail="only dead deliveries can be replayed")
        wake()
        record = await store.get(delivery_id)
        return record.as_json() if record is not None else {"id": delivery_id}

    return router
