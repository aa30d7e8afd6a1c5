"""Output profiles (rest-spec §7)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kiln.actors.base import ask
from kiln.actors.commands import AddOutputProfiles, DeleteOutputProfile, ReplaceOutputProfile
from kiln.config.unimplemented import profile_warnings
from kiln.domain.app_config import profiles_of
from kiln.errors import ApiError, read_only
from kiln.http.apps import warn_unimplemented
from kiln.http.envelope import multi_status, ok
from kiln.http.lookups import app_ref, need_app, need_vhost
from kiln.http.router import APP, PROFILE, VHOST, Call, Router


def register(router: Router, api: Any) -> None:
    ctx = api.ctx

    def writable_app(call: Call) -> Any:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        if need_vhost(ctx, call.params["vhost"]).read_only:
            raise read_only(call.params["vhost"])
        return view

    async def list_profiles(call: Call) -> Response:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        return ok([p.get("name") for p in profiles_of(view.config)])

    async def create_profiles(call: Call) -> Response:
        writable_app(call)
        ref = app_ref(ctx, call.params["vhost"], call.params["app"])
        results = await ask(ref, AddOutputProfiles(call.body))
        for result in results:
            if result.error is None and isinstance(result.response, dict):
                warn_unimplemented(call.params["vhost"], call.params["app"], profile_warnings(result.response))
        return multi_status(results)

    async def get_profile(call: Call) -> Response:
        view = need_app(ctx, call.params["vhost"], call.params["app"])
        for profile in profiles_of(view.config):
            if profile.get("name") == call.params["profile"]:
                return ok(profile)
        raise ApiError(404, "Could not find the output profile: "
                            f"[{call.params['vhost']}/{call.params['app']}/{call.params['profile']}]")

    async def patch_profile(call: Call) -> Response:
        writable_app(call)
        ref = app_ref(ctx, call.params["vhost"], call.params["app"])
        profile = await ask(ref, ReplaceOutputProfile(call.params["profile"], call.body))
        if isinstance(profile, dict):
            warn_unimplemented(call.params["vhost"], call.params["app"], profile_warnings(profile))
        return ok(profile)

    async def delete_profile(call: Call) -> Response:
        writable_app(call)
        ref = app_ref(ctx, call.params["vhost"], call.params["app"])
        await ask(ref, DeleteOutputProfile(call.params["profile"]))
        return ok()

    base = rf"/v1/vhosts/{VHOST}/apps/{APP}/outputProfiles"
    router.add("GET", base, list_profiles)
    router.add("POST", base, create_profiles)
    router.add("GET", rf"{base}/{PROFILE}", get_profile)
    router.add("PATCH", rf"{base}/{PROFILE}", patch_profile)
    router.add("DELETE", rf"{base}/{PROFILE}", delete_profile)
