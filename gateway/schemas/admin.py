"""Request and query-string schemas of the admin API (and the CLI, which loads the same ones)."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal, InvalidOperation

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

from gateway.models.usage_record import RECORD_STATUSES
from gateway.models.types import MAX_ID
from gateway.models.user import USER_STATUSES
from gateway.schemas.fields import StrictInteger
from gateway.schemas.fields import check_text

MAX_INT64 = 2**63 - 1
MAX_PAGE = 200
DEFAULT_PAGE = 50
MONEY_PLACES = 6
MAX_MONEY = Decimal("99999999.999999")
GROUP_BY = ("day", "model")


class StrictMoney(fields.Field):
    """A non-negative USD amount as a JSON number or numeric string, at most 6 decimal places."""

    def _deserialize(self, value, attr, data, **kwargs) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValidationError("Must be a number of US dollars, e.g. 25 or \"12.50\".")
        try:
            amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            raise ValidationError("Must be a number of US dollars, e.g. 25 or \"12.50\".") from None
        if not amount.is_finite():
            raise ValidationError("Must be a finite number.")
        if amount < 0 or amount > MAX_MONEY:
            raise ValidationError(f"Must be between 0 and {MAX_MONEY}.")
        if amount.as_tuple().exponent < -MONEY_PLACES:
            raise ValidationError(f"Must have at most {MONEY_PLACES} decimal places.")
        return amount


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _storable(value: str) -> None:
    """No NUL (PostgreSQL refuses it) and no lone surrogates (not UTF-8): a 400, not a 500 at INSERT."""
    check_text(value, "value")


def _utc_representable(value) -> None:
    """9999-12-31T23:59:59-01:00 is past the last moment a UTC timestamp can hold."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError("Must be a time between the years 1 and 9999 in UTC.") from None


def _user_id(**kwargs) -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class StrictSchema(Schema):
    """Unknown fields are an error, never silently dropped."""

    class Meta:
        unknown = RAISE


class UserCreateSchema(StrictSchema):
    """POST /admin/users."""

    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank, _storable])
    email = fields.Email(required=True, validate=[validate.Length(max=254), _storable])

    @pre_load
    def _trim(self, data, **_kwargs):
        """Pasted values often carry stray spaces around them."""
        return {name: value.strip() if isinstance(value, str) else value for name, value in data.items()}


class PageQuerySchema(StrictSchema):
    """limit + opaque cursor, shared by the paginated listings."""

    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.String(load_default=None, validate=validate.Length(min=1, max=200))


class UserListQuerySchema(PageQuerySchema):
    """GET /admin/users."""

    status = fields.String(load_default=None, validate=validate.OneOf(USER_STATUSES))


class KeyCreateSchema(StrictSchema):
    """POST /admin/keys; a naive expires_at is taken as UTC."""

    user_id = _user_id(required=True)
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), _not_blank, _storable])
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=UTC,
                                      validate=_utc_representable)


class KeyListQuerySchema(StrictSchema):
    """GET /admin/keys."""

    user_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))


class LimitsSchema(StrictSchema):
    """POST /admin/limits: only the fields present change; null puts one back to the default."""

    user_id = _user_id(required=True)
    daily_requests = StrictInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_ID))
    daily_tokens = StrictInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_INT64))
    monthly_spend_cap_usd = StrictMoney(allow_none=True)
    rate_limit_max = StrictInteger(allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    max_concurrent_requests = StrictInteger(allow_none=True, validate=validate.Range(min=0, max=MAX_ID))


class UsageQuerySchema(StrictSchema):
    """GET /admin/usage: inclusive UTC dates; the service fills the defaults and checks from <= to."""

    user_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    start = fields.Date(data_key="from", load_default=None)
    end = fields.Date(data_key="to", load_default=None)
    group_by = fields.String(load_default=None, validate=validate.OneOf(GROUP_BY))


class RecordsQuerySchema(PageQuerySchema):
    """GET /admin/usage/records."""

    user_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_ID))
    status = fields.String(load_default=None, validate=validate.OneOf(RECORD_STATUSES))
    model = fields.String(load_default=None, validate=[validate.Length(min=1, max=100), _storable])
    start = fields.Date(data_key="from", load_default=None)
    end = fields.Date(data_key="to", load_default=None)
