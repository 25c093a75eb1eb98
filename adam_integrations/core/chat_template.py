"""Render a Jinja chat template (as stored in a GGUF, a tokenizer_config.json, or a model
made with ``/api/create``) safely: in a sandbox, and within limits on time and size.

The environment is the one Hugging Face chat templates are written for (transformers'
``apply_chat_template``: trimmed blocks, ``tojson``, ``raise_exception``,
``strftime_now``, ``dict``, ``namespace``, ``{% generation %}``), so both in-process
backends make the same prompt of a template. A template is code that anyone who uploads
a model can write, so rendering is held to ``TemplateLimits`` (``TemplateLimitError``, a
400, when one is broken), whatever the template does:

- **time**: every loop iteration and every call (macros included) counts, and the
  render stops once ``seconds`` have passed (nested ``range()`` loops);
- **size**: text written anywhere (the prompt, macro and block buffers) and every value
  built (``"a" * 100000000``, ``~`` and ``+`` joins, ``join``, ``replace``, ``center``,
  ``format`` widths, ``tojson`` indents, big powers) is checked *before* it is made, so
  memory cannot run away between two checks; the prompt itself may have ``max_chars``;
- **recursion**: a macro that calls itself without end is refused, not a crash.

``check_chat_template`` renders a template once over sample conversations, as a model is
created (``/api/create``, ``adam create``): a template that does not compile, or breaks a
limit, is refused then.

Example:
    >>> render_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}",
    ...                      [{"role": "user", "content": "hi"}])
    'hi'
    >>> render_chat_template('{{ "a" * 100000000 }}', [])
    Traceback (most recent call last):
    ...
    adam_integrations.core.errors.TemplateLimitError: the chat template would make a text \
of 100,000,000 characters ('*'), over its limit of 8,000,000; ...
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import string
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from adam_integrations.core.errors import InvalidRequestError, TemplateLimitError


@dataclass(frozen=True)
class TemplateLimits:
    """What one render may take: ``seconds`` of time and a prompt of ``max_chars``
    characters (text written anywhere in the template may be twice that, no value built
    larger). ``adam serve`` holds every request to its own (``template_limits``)."""

    max_chars: int = 8_000_000
    seconds: float = 10.0


DEFAULT_LIMITS = TemplateLimits()
_limits: ContextVar[TemplateLimits] = ContextVar("adam_template_limits",
                                                  default=DEFAULT_LIMITS)


@contextlib.contextmanager
def template_limits(limits: TemplateLimits) -> Iterator[None]:
    """Hold the renders in this context (threads started from it included, see
    ``core.streaming.iterate_in_thread``) to ``limits``."""
    token = _limits.set(limits)
    try:
        yield
    finally:
        _limits.reset(token)


def render_chat_template(template: str, messages: list[dict[str, Any]], *,
                         limits: TemplateLimits | None = None,
                         add_generation_prompt: bool = True, **variables: Any) -> str:
    """The prompt text ``template`` makes of ``messages`` (with the generation prompt,
    unless ``add_generation_prompt`` is false: a conversation as trained on), within
    ``limits`` (else the context's, see ``template_limits``)."""
    from jinja2.exceptions import TemplateError, TemplateSyntaxError

    budget = _Budget(limits or _limits.get())
    token = _active.set(budget)
    try:
        compiled = _compiled(template)
        parts: list[str] = []
        size = 0
        for part in compiled.generate(messages=_with_reasoning_aliases(messages),
                                      add_generation_prompt=add_generation_prompt,
                                      **variables):
            size += len(part)
            budget.sized(size, "a prompt", budget.limits.max_chars)
            parts.append(part)
        return "".join(parts)
    except TemplateLimitError:
        raise
    except RecursionError:
        raise TemplateLimitError(
            "the chat template calls itself without end (a recursive macro); fix the "
            "template") from None
    except TemplateSyntaxError as error:
        raise _not_compiling(error) from None
    except TemplateError as error:
        raise InvalidRequestError(f"the chat template refused this conversation: {error}") \
            from error
    except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as error:
        raise InvalidRequestError(
            f"the chat template failed on this conversation ({type(error).__name__}: "
            f"{error}); the template cannot read messages of this shape") from error
    finally:
        _active.reset(token)


SAMPLE_CONVERSATIONS: tuple[tuple[list[dict[str, Any]], dict[str, Any]], ...] = (
    ([{"role": "user", "content": "Hello!"}], {}),
    ([{"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "What is 2 + 2?"},
      {"role": "assistant", "content": "4"},
      {"role": "user", "content": "And 3 + 3?"}], {"enable_thinking": False}),
    ([{"role": "user", "content": "What is the weather in Paris?"}],
     {"tools": [{"type": "function", "function": {
         "name": "get_weather", "description": "The weather in a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"]}}}], "enable_thinking": True}),
)
"""What a template is tried on when a model is created: a first turn, a conversation
with a system prompt, and a request with a tool."""


def check_chat_template(template: str, *, limits: TemplateLimits | None = None,
                        **variables: Any) -> None:
    """Refuse a template that does not compile or breaks ``limits`` on the sample
    conversations (InvalidRequestError, TemplateLimitError). A template's own refusal of
    a sample (``raise_exception``: "roles must alternate") is its rule, not a fault."""
    from jinja2.exceptions import TemplateSyntaxError

    try:
        _compiled(template)
    except TemplateSyntaxError as error:
        raise _not_compiling(error) from None
    for messages, extra in SAMPLE_CONVERSATIONS:
        try:
            render_chat_template(template, messages, limits=limits, **{**variables, **extra})
        except TemplateLimitError as error:
            raise TemplateLimitError(str(error), param="template") from None
        except InvalidRequestError:
            continue  # the template's own refusal of this sample


def _not_compiling(error: Any) -> InvalidRequestError:
    return InvalidRequestError(f"the chat template does not compile: {error} (line "
                               f"{error.lineno}); fix the template", param="template")


def _with_reasoning_aliases(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reasoning under the names templates read it by: ``reasoning_content`` (Qwen) and
    ``thinking`` (gpt-oss), as transformers passes it."""
    if not any("reasoning_content" in m or "thinking" in m for m in messages):
        return messages
    aliased = []
    for message in messages:
        reasoning = message.get("reasoning_content") or message.get("thinking")
        if reasoning:
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        aliased.append(message)
    return aliased


# -- the limits, while a template runs --------------------------------------------------
_TICK_EVERY = 256  # iterations and calls between two looks at the clock


class _Budget:
    """One render's limits, checked from inside the template."""

    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.ticks = 0
        self.written = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % _TICK_EVERY == 0 and time.monotonic() > self.deadline:
            raise TemplateLimitError(
                f"the chat template ran for more than {self.limits.seconds:g} seconds "
                f"({self.ticks:,} loop steps and calls); its loops are too large for any "
                "conversation: fix the template")

    def sized(self, size: int, what: str, limit: int | None = None) -> None:
        limit = limit or self.limits.max_chars
        if size > limit:
            raise TemplateLimitError(
                f"the chat template would make {what} of {size:,} characters, over its "
                f"limit of {limit:,}; shorten the conversation, or fix the template if it "
                "builds text no conversation needs")

    def wrote(self, size: int) -> None:
        self.written += size
        self.sized(self.written, "text (written in all)", 2 * self.limits.max_chars)


_active: ContextVar[_Budget | None] = ContextVar("adam_template_budget", default=None)


def _budget() -> _Budget:
    budget = _active.get()
    return budget if budget is not None else _Budget(DEFAULT_LIMITS)


def _sized(size: int, operation: str) -> None:
    budget = _budget()
    if size > budget.limits.max_chars:
        raise TemplateLimitError(
            f"the chat template would make a text of {size:,} characters ({operation!r}), "
            f"over its limit of {budget.limits.max_chars:,}; shorten the conversation, or "
            "fix the template if it builds text no conversation needs")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple)) else 0


class _Ticking:
    """A loop's iterable, counting each step against the time limit."""

    def __init__(self, iterable: Iterable[Any], budget: _Budget) -> None:
        self.iterable = iterable
        self.budget = budget

    def __iter__(self) -> Iterator[Any]:
        tick = self.budget.tick
        for item in self.iterable:
            tick()
            yield item

    def __len__(self) -> int:
        return len(self.iterable)  # type: ignore[arg-type]  # TypeError: LoopContext counts


def _runtime(function: Any) -> Any:
    """A filter Jinja's optimizer must not run at compile time on constant arguments (the
    count belongs to each render): it takes the render's context, so it never is."""
    import jinja2

    return jinja2.pass_context(lambda context, value: function(value))


def _ticking(iterable: Any) -> Any:
    return _Ticking(iterable, _budget())


def _emitted(parts: list[Any]) -> str:
    """What one output statement writes, counted against the text written in all."""
    text = "".join(map(str, parts))
    _budget().wrote(len(text))
    return text


def _joined(parts: list[Any]) -> str:
    """The ``~`` operator's join, its size checked first."""
    texts = [str(part) for part in parts]
    _sized(sum(map(len, texts)), "~")
    return "".join(texts)


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_format_widths(widths: Iterable[str], arguments: Iterable[Any],
                         operation: str) -> None:
    """The widths and precisions of a ``%`` or ``format`` spec (``"*"``: taken from the
    arguments) would make a huge text."""
    widest = 0
    for width in widths:
        if width in ("*", "{"):
            widest = max([widest, *(a for a in arguments
                                    if isinstance(a, int) and not isinstance(a, bool))])
        elif width:
            widest = max(widest, int(width) if len(width) < 12 else 10**12)
    _sized(widest, operation)


def _percent_widths(text: str) -> list[str]:
    return [width for match in _PERCENT_SPEC.finditer(text) for width in match.groups()
            if width]


def _brace_widths(text: str) -> list[str]:
    """The numbers in ``str.format`` specs, and ``{`` for a spec taken from an argument."""
    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(text) if spec]
    except ValueError:
        return []
    return [width for spec in specs
            for width in (["{"] if "{" in spec else re.findall(r"\d+", spec))]


# -- the environment ----------------------------------------------------------------------
@lru_cache(maxsize=32)
def _compiled(template: str) -> Any:
    return _environment().from_string(template)


@lru_cache(maxsize=1)
def _environment() -> Any:
    """The sandboxed, limited environment (built once)."""
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.filters import do_batch, do_center, do_indent, do_replace, do_slice
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import Namespace
    from jinja2.visitor import NodeTransformer

    class Generation(Extension):
        """``{% generation %}...{% endgeneration %}``: transformers marks the assistant's
        tokens with it (for training masks); rendering a prompt, it writes its body."""

        tags = frozenset({"generation"})

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body).set_lineno(lineno)

    class Limited(NodeTransformer):
        """Every loop's iterable counted, every output and ``~`` join sized."""

        def visit_For(self, node: Any) -> Any:
            node = self.generic_visit(node)
            node.iter = nodes.Filter(node.iter, "adam_ticking", [], [], None, None
                                     ).set_lineno(node.lineno)
            return node

        def visit_Concat(self, node: Any) -> Any:
            node = self.generic_visit(node)
            return nodes.Filter(nodes.List(node.nodes), "adam_joined", [], [], None, None
                                ).set_lineno(node.lineno)

        def visit_Output(self, node: Any) -> Any:
            node = self.generic_visit(node)
            return nodes.Output([nodes.Filter(nodes.List(node.nodes), "adam_emitted", [],
                                              [], None, None).set_lineno(node.lineno)]
                                ).set_lineno(node.lineno)

    class Environment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "%", "+", "**"})

        def _generate(self, source: Any, name: Any, filename: Any,
                      defer_init: bool = False) -> Any:
            source = Limited().visit(source)
            source.set_environment(self)
            return super()._generate(source, name, filename, defer_init)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(self, context: Any, callable_: Any, /, *args: Any, **kwargs: Any) -> Any:
            _budget().tick()
            args = _checked_call(callable_, args, kwargs)
            return super().call(context, callable_, *args, **kwargs)

    class TemplateNamespace(Namespace):
        """``namespace()`` without underscore attributes (CPython's internals)."""

        def __init__(*args: Any, **kwargs: Any) -> None:
            self, rest = args[0], args[1:]
            for key in dict(*rest, **kwargs):
                TemplateNamespace._check(key)
            Namespace.__init__(self, *rest, **kwargs)

        def __setitem__(self, key: str, value: Any) -> None:
            TemplateNamespace._check(key)
            super().__setitem__(key, value)

        @staticmethod
        def _check(key: Any) -> None:
            if isinstance(key, str) and key.startswith("_"):
                raise jinja2.exceptions.SecurityError(
                    f"a namespace attribute may not start with an underscore: {key!r}")

    class TemplateDict:
        """``dict(...)`` and ``dict.fromkeys(...)``, nothing else of the class."""

        def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
            return dict(*args, **kwargs)

        def fromkeys(self, *args: Any) -> dict[Any, Any]:
            return dict.fromkeys(*args)

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: Any = None,
               separators: Any = None, sort_keys: bool = False) -> str:
        if isinstance(indent, int) and not isinstance(indent, bool):
            _sized(indent * 1000, "tojson indent")
        elif isinstance(indent, str):
            _sized(len(indent) * 1000, "tojson indent")
        text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)
        _sized(len(text), "tojson")
        return text

    @jinja2.pass_eval_context
    def center(context: Any, value: Any, width: int = 80) -> Any:
        _sized(width if isinstance(width, int) else 0, "center")
        return do_center(value, width)

    def indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
        text = str(value)
        lines = text.count("\n") + 1
        step = width if isinstance(width, int) and not isinstance(width, bool) else (
            len(width) if isinstance(width, str) else 0)
        _sized(len(text) + lines * step, "indent")
        return do_indent(value, width, first, blank)

    def format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
        _check_format_widths(_percent_widths(str(value)), [*args, *kwargs.values()],
                             "format")
        if args and kwargs:
            raise jinja2.exceptions.FilterArgumentError(
                "can't handle positional and keyword arguments at the same time")
        return str(value) % (kwargs or args)

    @jinja2.pass_environment
    def join(environment: Any, value: Any, d: str = "", attribute: Any = None) -> str:
        from jinja2.filters import make_attrgetter

        items = list(value)
        if attribute is not None:
            items = list(map(make_attrgetter(environment, attribute), items))
        texts = [str(item) for item in items]
        _sized(sum(map(len, texts)) + len(str(d)) * max(0, len(texts) - 1), "join")
        return str(d).join(texts)

    @jinja2.pass_eval_context
    def replace(context: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
        _check_replace(str(value), str(old), str(new), count)
        return do_replace(context, value, old, new, count)

    def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
        _sized(linecount if isinstance(linecount, int) else 0, "batch")
        return do_batch(value, linecount, fill_with)

    def slice_filter(value: Any, slices: int, fill_with: Any = None) -> Any:
        _sized(slices if isinstance(slices, int) else 0, "slice")
        return do_slice(value, slices, fill_with)

    environment = Environment(trim_blocks=True, lstrip_blocks=True,
                              extensions=[Generation, "jinja2.ext.loopcontrols"])
    environment.filters.update({
        "tojson": tojson, "center": center, "indent": indent, "format": format_filter,
        "join": join, "replace": replace, "batch": batch, "slice": slice_filter,
        "adam_ticking": _runtime(_ticking), "adam_joined": _runtime(_joined),
        "adam_emitted": _runtime(_emitted)})
    environment.globals.pop("lipsum", None)  # lipsum(n=10**9): no template needs it
    environment.globals.update({
        "raise_exception": raise_exception, "namespace": TemplateNamespace,
        "strftime_now": lambda fmt: datetime.now().strftime(fmt),
        "dict": TemplateDict()})
    return environment


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                _sized(len(sequence) * max(times, 0), "*")
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _sized(len(left) + len(right), "+")
    elif operator == "%" and isinstance(left, str):
        _check_format_widths(_percent_widths(left),
                             right if isinstance(right, tuple) else (right,), "%")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) \
            and abs(left) > 1 and right > 0:
        _sized(int(right * math.log10(abs(left))), "**")  # digits of the result


def _checked_call(callable_: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
                  ) -> tuple[Any, ...]:
    """The size a string method would make, checked before it runs (an iterable given
    to ``join`` is read once here and passed on as a list)."""
    method = getattr(callable_, "__wrapped__", callable_)  # the sandbox wraps str.format
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str):
        return args
    name = getattr(method, "__name__", "")
    if name == "join" and args:
        items = list(args[0])
        _sized(sum(_length(i) for i in items) + len(owner) * max(0, len(items) - 1),
               "join")
        return (items, *args[1:])
    if name == "replace" and len(args) >= 2:
        _check_replace(owner, str(args[0]), str(args[1]),
                       args[2] if len(args) > 2 else kwargs.get("count"))
    elif name in ("center", "ljust", "rjust", "zfill") and args:
        _sized(args[0] if isinstance(args[0], int) else 0, name)
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else kwargs.get("tabsize", 8)
        _sized(len(owner) + owner.count("\t") * (size if isinstance(size, int) else 0),
               name)
    elif name in ("format", "format_map"):
        _check_format_widths(_brace_widths(owner), [*args, *kwargs.values()], name)
    return args


def _check_replace(text: str, old: str, new: str, count: Any) -> None:
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _sized(len(text) + found * (len(new) - len(old)), "replace")
