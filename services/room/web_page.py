"""`/rooms-ui/`: the demo page (static HTML + JS, no build step, no CDN) and its dev-only token minting.

`POST /rooms-ui/dev-token` answers 404 unless `ROOM_DEV_TOKENS=true`. When enabled it signs a Twilio-format
Access Token (HS256 with the API key's secret, 1 h) for `{api_key, identity, room}`: anyone who can reach
it can join as anyone with that key, so it is for the local devstack only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from libs.auth.store import IdentityStore
from libs.events.sids import ApiKeySid
from libs.twilio.errors import TwilioError

WEB = Path(__file__).resolve().parent / "web"
FILES = {"": "index.html", "index.html": "index.html", "app.js": "app.js"}
TOKEN_TTL = 3600


def mint_token(key_sid: str, account_sid: str, secret: str, identity: str, room: str | None, now: int) -> str:
    """An Access Token as `twilio.jwt.access_token.AccessToken` + `VideoGrant` builds it."""
    video: dict[str, Any] = {"room": room} if room else {}
    claims = {
        "jti": f"{key_sid}-{now}",
        "grants": {"identity": identity, "video": video},
        "iss": key_sid,
        "sub": account_sid,
        "nbf": now,
        "exp": now + TOKEN_TTL,
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"cty": "twilio-fpa;v=1"})


def page_router(identity: IdentityStore, *, dev_tokens: bool) -> APIRouter:
    router = APIRouter()

    @router.get("/rooms-ui")
    async def page_root() -> Response:
        return RedirectResponse("/rooms-ui/", status_code=308)

    @router.get("/rooms-ui/{name:path}")
    async def page_file(name: str) -> Response:
        file = FILES.get(name)
        if file is None:
            raise TwilioError(404, 20404, "Not found")
        media = "text/javascript" if file.endswith(".js") else "text/html"
        return FileResponse(WEB / file, media_type=media, headers={"Cache-Control": "no-store"})

    @router.post("/rooms-ui/dev-token")
    async def dev_token(request: Request) -> Response:
        if not dev_tokens:
            raise TwilioError(404, 20404, "Dev tokens are disabled (ROOM_DEV_TOKENS=false)")
        body = await request.json()
        key, who, room = body.get("api_key"), body.get("identity"), body.get("room") or None
        if not isinstance(key, str) or not ApiKeySid.is_valid(key) or not isinstance(who, str) or not who:
            raise TwilioError(400, 20001, "api_key (SK…) and identity are required")
        found = await identity.api_key(ApiKeySid(key))
        if found is None:
            raise TwilioError(404, 20404, "Unknown API key")
        token = mint_token(
            key, found[0], found[1], who, room if isinstance(room, str) else None, int(time.time())
        )
        return JSONResponse({"token": token})

    return router
