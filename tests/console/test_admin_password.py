"""piccolo-admin cannot store a password as typed: PATCH and create hash it, PUT is refused."""

from __future__ import annotations

import httpx

from server.accounts.passwords import is_hashed
from server.accounts.tables import User
from tests import factories as f
from tests.console.helpers import sign_in


async def _stored_password(user_id: int) -> str:
    row = await User.select(User.password).where(User.id == user_id).first()
    assert row is not None
    return str(row["password"])


async def test_a_password_typed_in_piccolo_admin_is_never_stored_as_typed(client: httpx.AsyncClient) -> None:
    root = await f.make_user(email="root@example.com", role=User.GlobalRole.ADMIN)
    # piccolo-admin lets only its superusers edit its auth table: the strongest case.
    await User.update({User.superuser: True}).where(User.id == root.id)
    ann = await f.make_user(email="ann@example.com", name="Ann")
    before = await _stored_password(ann.id)
    await sign_in(client, "root@example.com")
    client.cookies.set("csrftoken", "t" * 32)
    headers = {"X-CSRFToken": "t" * 32}
    url = f"/admin/api/tables/parley_user/{ann.id}/"

    row = {
        "username": "ann@example.com",
        "email": "ann@example.com",
        "name": "Ann",
        "password": "plain text pw",
    }
    put = await client.put(url, json=row, headers=headers)
    assert put.status_code == 405
    assert await _stored_password(ann.id) == before

    patched = await client.patch(url, json={"password": "typed in the admin"}, headers=headers)
    assert patched.status_code < 300, patched.text
    stored = await _stored_password(ann.id)
    assert stored != "typed in the admin" and is_hashed(stored)
    await sign_in(client, "ann@example.com", "typed in the admin")
