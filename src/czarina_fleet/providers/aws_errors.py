"""EC2 error codes mapped to the driver contract's error classes, with messages that say
what the user should change. Kept apart from aws.py so the table is easy to review."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from czarina_fleet.providers.base import (
    CapacityError,
    CredentialsError,
    InvalidPoolConfig,
    PermissionDenied,
    ProviderError,
    QuotaError,
    TransientError,
)

CAPACITY_CODES = frozenset({
    "InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientCapacity",
    "InsufficientReservedInstanceCapacity", "SpotMaxPriceTooLow", "Unsupported",
    "InsufficientFreeAddressesInSubnet",
})
QUOTA_CODES = frozenset({
    "MaxSpotInstanceCountExceeded", "InstanceLimitExceeded", "VcpuLimitExceeded",
    "MaxSpotFleetRequestCountExceeded",
})
TRANSIENT_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "ServiceUnavailable",
    "Unavailable", "InternalError", "InternalFailure", "RequestTimeout",
})
CREDENTIAL_CODES = frozenset({
    "AuthFailure", "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken",
    "RequestExpired", "SignatureDoesNotMatch", "IncompleteSignature",
})
PERMISSION_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})
GONE_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
_CONFIG_HINTS = {
    "InvalidAMIID": 'set "image" to an AMI id that exists in this region',
    "InvalidSubnetID": 'set options.subnet_id (or subnet_ids per region) to a subnet there',
    "InvalidGroup": "set options.security_group_ids to groups in the subnet's VPC",
    "InvalidKeyPair": "set options.key_name to a key pair imported in this region",
    "InvalidAvailabilityZone": 'list zones that exist (e.g. "us-east-1a") in "regions"',
    "OptInRequired": "enable this region for the account, or remove it from \"regions\"",
    "InvalidParameterValue": 'check "instance_types", "image" and "options"',
    "InvalidParameterCombination": 'check "instance_types", "image" and "options"',
}


class InstanceGone(ProviderError):
    """The instance id is unknown (terminated long ago, or in another region)."""


def map_client_error(exc: ClientError, operation: str, region: str, pool: Any) -> ProviderError:
    """The contract's error for an EC2 ClientError raised by `operation` in `region`."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    where = f'pool "{pool.name}", {region}'
    if code in CAPACITY_CODES:
        return CapacityError(f"{code}: {message}")
    if code in QUOTA_CODES:
        return QuotaError(
            f"{where}: {code}: {message}; request a limit increase in the Service Quotas "
            f"console or lower max_hosts")
    if code in TRANSIENT_CODES or status >= 500:
        return TransientError(f"{operation} in {region}: {code or status}: {message}")
    if code in CREDENTIAL_CODES:
        return CredentialsError(
            f"AWS rejected the credentials ({code}): refresh them in the default chain "
            f"(AWS_PROFILE, ~/.aws/credentials, SSO login, instance role)")
    if code in PERMISSION_CODES:
        permission = f"ec2:{operation}"
        return PermissionDenied(
            f"{where}: the credentials may not call {permission}: grant it (see "
            f"docs/permissions.md and terraform-examples/aws)", permission)
    if code in GONE_CODES:
        return InstanceGone(f"{code}: {message}")
    hint = next((h for prefix, h in _CONFIG_HINTS.items() if code.startswith(prefix)), None)
    if hint is not None or code.startswith("Invalid"):
        return InvalidPoolConfig(f"{where}: {code}: {message}; {hint or 'check the pool'}")
    return ProviderError(f"{operation} in {region} failed: {code}: {message}")
