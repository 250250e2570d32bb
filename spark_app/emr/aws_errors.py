"""What AWS refused, said in one line with its probable cause, instead of a stack trace."""

from __future__ import annotations


def explain_aws_error(exc: Exception) -> str:
    """One line on what AWS refused and the likely cause, instead of a stack trace."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE, or run `aws configure` / `aws sso login`"
    if isinstance(exc, EndpointConnectionError):
        where = exc.kwargs.get("endpoint_url")
        return f"cannot reach {where}: check emr.region, emr.endpoint_url and the network"
    if isinstance(exc, ClientError):
        err, op = exc.response.get("Error", {}), exc.operation_name
        code, msg = err.get("Code", "?"), err.get("Message", "")
        hints = {
            "AccessDenied": "the credentials in use lack this permission",
            "AccessDeniedException": "the credentials in use lack this permission",
            "NoSuchBucket": "the bucket does not exist (emr.bucket / emr.log_uri in the config)",
            "ValidationException": "EMR rejected a field of the request; compare with --dry-run",
            "InvalidRequestException": "EMR rejected the request; check the cluster or step id",
            "ExpiredToken": "the session credentials expired: log in again",
        }
        return f"AWS refused {op} ({code}: {msg}); probable cause: {hints.get(code, 'see the message')}"
    return str(exc)
