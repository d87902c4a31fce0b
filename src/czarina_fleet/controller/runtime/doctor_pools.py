"""`czarina doctor` for cloud pools: build the pool's driver (its credentials chain) and
run the driver's read-only checks (`Provider.doctor`). Nothing is launched."""

from __future__ import annotations

from collections.abc import Callable

from czarina_fleet.controller.runtime.doctor_report import Check
from czarina_fleet.errors import UserError
from czarina_fleet.model.config import PoolSpec
from czarina_fleet.providers.base import CredentialsError, Provider, ProviderError


async def check_pool(spec: PoolSpec, factory: Callable[[PoolSpec], Provider]) -> list[Check]:
    subject = f"pool {spec.name}"
    try:
        provider = factory(spec)
    except CredentialsError as e:
        return [Check(subject, "credentials", False, str(e))]
    except (ProviderError, UserError) as e:
        return [Check(subject, "driver", False, str(e))]
    try:
        findings = await provider.doctor()
    except CredentialsError as e:
        return [Check(subject, "credentials", False, str(e))]
    except ProviderError as e:
        return [Check(subject, "driver", False, f"{type(e).__name__}: {e}")]
    finally:
        await provider.close()
    return [Check(subject, f.check, f.ok, f.detail) for f in findings]
