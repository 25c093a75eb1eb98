"""Structured output: the answer is JSON that validates, even from a 135M model.

Generation is constrained by a grammar built from the schema (xgrammar), so the model
cannot produce anything else. Works with a pydantic model, a JSON schema, or "json".
"""

from typing import Literal

from pydantic import BaseModel

from adam_integrations import ModelManager


class Movie(BaseModel):
    title: str
    year: int
    genre: Literal["drama", "comedy", "action", "science fiction"]


manager = ModelManager()
completion = manager.chat([{"role": "user", "content": "Describe the movie Alien."}],
                          response_format=Movie, temperature=0.0, max_tokens=200)
print(completion.text)
print(repr(completion.parsed))  # a Movie instance

schema = {"type": "object",
          "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
          "required": ["tags"]}
print(manager.generate_response("Tag a post about Python packaging.", temperature=0.0,
                                response_format=schema))
