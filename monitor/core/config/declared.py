"""Tables declared once, as typed dicts: pydantic checks a table against its declaration and
writes its JSON Schema (the API's OpenAPI document is made of these), while each key is
judged by newsmon's own check, so its problem keeps newsmon's message and fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from monitor.core.config.reading import Check, Reader, key_name, value_problem
from monitor.core.config.values import Between

NEWSMON = "newsmon"  # the error type of a problem found by a newsmon check


@dataclass(frozen=True)
class Checked:
    """An annotation of a declared key: its value must be of `kind` and pass `check`, which
    run before pydantic's own validation and word the problem. A Between's bounds are stated
    in the JSON Schema."""

    kind: type | tuple[type, ...]
    check: Check | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_wrap_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema = handler(schema)
        if isinstance(self.check, Between):
            json_schema["exclusiveMinimum" if self.check.above else "minimum"] = self.check.low
            json_schema["maximum"] = self.check.high
        return json_schema

    def _validate(self, value: Any, handler: core_schema.ValidatorFunctionWrapHandler) -> Any:
        if message := value_problem(value, self.kind, self.check):
            raise PydanticCustomError(NEWSMON, "{message}", {"message": message})
        return handler(value)


def check_table(
    declared: TypeAdapter[Any], table: dict[str, Any], reader: Reader, where: str
) -> set[str]:
    """Record a problem for each key of `table` not as `declared` says, and for each required
    key left out; return those keys. Keys it does not declare must be taken out first."""
    try:
        declared.validate_python(table)
    except ValidationError as error:
        faulty = set()
        for found in error.errors(include_url=False):
            key = str(found["loc"][0])
            if found["type"] == NEWSMON:
                message = found["ctx"]["message"]
            elif found["type"] == "missing":
                message = "is required; add it"
            else:  # a declared constraint no newsmon check covers
                message = found["msg"]
            reader.problem(f"{where}{key_name(key)}", message)
            faulty.add(key)
        return faulty
    return set()
