"""Account inputs and outputs. Limits equal users' CHECK constraints
(sql/migrations/0001.create_users.sql)."""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from service.auth.strength import weak_password_reason
from service.schemas import StrictBoolean, StrictSchema, Text, row_serializer

EMAIL_MAX = 254
NAME_MAX = 100
PASSWORD_MIN = 8
PASSWORD_MAX = 256  # characters; far above the 64 the contract demands
SIGNIN_PASSWORD_MAX = 4096  # longer is never a password of ours; refuse early


def valid_email(value: str) -> None:
    if len(value) > EMAIL_MAX:
        raise ValidationError(f"Must be at most {EMAIL_MAX} characters.")
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError(f"Not a valid email address: {exc}") from None


# Fields more than one schema declares (each schema instance deep-copies its own).
# An account's name: one visible line, as users_name_check bounds it.
NAME = Text(required=True, line=True, validate=validate.Length(min=1, max=NAME_MAX))
# A new password; its guessability check needs the email and name.
NEW_PASSWORD = Text(
    required=True,
    validate=validate.Length(min=PASSWORD_MIN, max=PASSWORD_MAX),
    metadata={
        "description": "Refused when commonly used or easy to guess (zxcvbn), or the "
        "email or name itself; no composition rules."
    },
)
# A password to check: only its shape is validated.
PRESENTED_PASSWORD = Text(required=True, validate=validate.Length(min=1, max=SIGNIN_PASSWORD_MAX))


class Email(Text):
    """An email address, surrounding whitespace trimmed, case kept."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class SignupSchema(StrictSchema):
    email = Email(
        required=True,
        validate=valid_email,
        metadata={"format": "email", "maxLength": EMAIL_MAX, "pattern": "^[^\\x00]*$"},
    )
    password = NEW_PASSWORD
    name = NAME

    @validates_schema
    def _password_not_guessable(self, data: dict[str, Any], **_: Any) -> None:
        # After the fields: `password` is absent here when it already failed.
        if "password" in data:
            reason = weak_password_reason(
                data["password"], data.get("email", ""), data.get("name", "")
            )
            if reason:
                raise ValidationError(reason, field_name="password")


class RenameSchema(StrictSchema):
    name = NAME


class SignoutSchema(StrictSchema):
    everywhere = StrictBoolean(
        load_default=False,
        metadata={"description": "true: end every session of the account, not only this one."},
    )


class PasswordChangeSchema(StrictSchema):
    current_password = PRESENTED_PASSWORD
    new_password = NEW_PASSWORD


class DeleteAccountSchema(StrictSchema):
    """DELETE /api/auth/me's body: required for password accounts."""

    password = PRESENTED_PASSWORD


class SigninSchema(StrictSchema):
    # Only shape is checked: anything else is just not a valid credential (401).
    email = Text(required=True, validate=validate.Length(min=1, max=1024))
    password = PRESENTED_PASSWORD

    @post_load
    def _trim(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["email"] = data["email"].strip()
        return data


class UserSchema(Schema):
    """The user as the API returns it (`user_json` is generated from it)."""

    id = fields.UUID(required=True)
    email = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "null only for a Better Auth account whose token had none."},
    )
    name = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class SessionSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, validate=validate.OneOf(["bearer"]))
    expires_in = fields.Integer(required=True)


user_json = row_serializer(UserSchema)
