"""ConstrainedDecoder: one request's plan (``decoding.grammar``) run token by token, the same
on every local backend.

Each step the backend hands over the next token's logits (``mask``), samples as usual, and
reports the token it chose (``accept``). The decoder:

- masks the logits with the phase's xgrammar matcher (free-text phases: left alone);
- moves to the next phase when a marker appears in the text (``<tool_call>``,
  ``</think>``) or the phase's grammar is complete, and ends the answer (``done``) at the
  end of the plan;
- keeps a think block that must close from ending the turn, and writes ``</think>`` for the
  model when the thinking budget is spent;
- **never cuts a constrained answer in half**: near the end of ``max_tokens`` it works out
  a short way to a complete answer from where the grammar stands (``closing``), keeps the
  model from opening anything new, and when the budget left is just enough, writes that
  closing itself (``closed_early``: the answer is complete, but the model would have gone
  on, so the finish reason stays "length"). A plan whose smallest answer does not fit in
  ``max_tokens`` is refused before generation.

Logits are torch tensors (the llama.cpp backend wraps llama.cpp's logits buffer without
copying). Forcing a token leaves it the only finite logit, so any sampler picks it.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from adam_integrations.core.errors import AdamError, InvalidRequestError
from adam_integrations.decoding.grammar import Grammars, Phase, Plan

CLOSING_ZONE = 8
"""Within this many tokens of the budget needed to close, the model may only continue
what it is writing (no new keys, items or strings) or take the closing path."""
MAX_CLOSING_BYTES = 512
FORCE_MARGIN = 3
"""The closing is written this many tokens before it would no longer fit: text inside a
format or pattern (the seconds of a date-time, say) can make it a little longer."""
MAX_GROWTH = 32
"""How much longer one token can make the closing, as the zone reckons: the smallest answer's
length, at most this."""
LOOKAHEAD_CHOICES = 8
"""A closing tries ahead where at most this many bytes are allowed (and none closes)."""
LOOKAHEAD_BYTES = 128
LOOKAHEAD_TOKENS = 6
"""In the zone, this many of the model's likeliest structural tokens are tried ahead."""

# Preference when closing, outside strings: close what is open, separate, then the
# shortest values; inside strings (where letters other than those of true/false/null and
# exponents are allowed): end the string, else plain letters and digits first.
_PUNCTUATION = "".join(c for c in string.punctuation if c not in '}]",:.-_@/+{[')
_PREFERENCE = ('}]",:' + string.digits + string.ascii_lowercase + string.ascii_uppercase
               + ".-_@/+" + _PUNCTUATION + "{[" + " \n").encode()
_IN_STRING = ('"' + string.ascii_lowercase + string.digits + string.ascii_uppercase
              + ".-_@/+:" + _PUNCTUATION + "}]{[," + " ").encode()
_CANDIDATES = list(_PREFERENCE) + list(range(0x80, 0xC0))  # continuation bytes: last
_STRING_RANK = {byte: rank for rank, byte in enumerate([*_IN_STRING, ord("\n"),
                                                         *range(0x80, 0xC0)])}
_STRUCTURAL = set(b'}]",:{[')
_STRUCTURAL_TEXT = set('}]",:{[')
_QUOTE_TEXT = set('"\\')
_QUOTE = ord('"')
_CLOSERS = set(b'}]"')
_WHITESPACE = set(b" \n\t")
_STRING_ONLY = set((string.ascii_letters.replace("t", "").replace("f", "").replace("n", "")
                    .replace("e", "").replace("E", "")).encode())


class ConstrainedDecoder:
    """See the module docstring.

    Args:
        plan: the request's phases.
        grammars: the model's compiled grammars and token table.
        max_new: the request's token budget.
        thinking_budget: tokens after which a think block that must close is closed.
        piece: the text of one token (for markers).
    """

    def __init__(self, plan: Plan, grammars: Grammars, *, max_new: int,
                 thinking_budget: int | None, piece: Callable[[int], str]) -> None:
        import numpy
        import torch
        import xgrammar

        self._xgrammar = xgrammar
        self._torch = torch
        self._plan = plan
        self._grammars = grammars
        self._max_new = max_new
        self._piece = piece
        self._end_ids = torch.tensor(grammars.end_ids, dtype=torch.long)
        self._end_set = frozenset(grammars.end_ids)
        info = grammars.info
        self._vocab_size = info.vocab_size
        self._bitmask = xgrammar.allocate_token_bitmask(1, self._vocab_size)
        self._probe = xgrammar.allocate_token_bitmask(1, self._vocab_size)
        candidates = [(byte, token) for byte in _CANDIDATES
                      if (token := grammars.byte_token(byte)) is not None]
        self._candidate_bytes = numpy.array([b for b, _ in candidates], dtype=numpy.uint8)
        ids = numpy.array([t for _, t in candidates], dtype=numpy.int64)
        self._candidate_words, self._candidate_bits = ids >> 5, (ids & 31).astype(numpy.int32)
        self._probe_words = self._probe.numpy()[0]  # a view: filled in place
        for phase in plan.phases:  # compile (and check) every grammar before generating
            if phase.format is not None:
                grammars.compiled(phase.format)
        self._growth = MAX_GROWTH
        reserve = self._smallest_answer(max_new)
        self._thinking_budget = (None if thinking_budget is None
                                 else max(0, min(thinking_budget, max_new - reserve)))
        self.done = False
        self.closed_early = False
        self._generated = 0
        self._forced: list[int] = []
        self._next_check = 0
        self._opened = True
        self._in_string = False
        self._in_closing_zone = False
        self._closing_path: list[int] = []
        self._enter(0)

    # -- the two calls per step ----------------------------------------------------------
    def mask(self, logits: Any) -> None:
        """Constrain the next token's ``logits`` (1-D, one per vocabulary entry) in place."""
        try:
            self._mask(logits)
        except RuntimeError as error:  # xgrammar's checks: never a user's exception
            raise AdamError(f"constrained decoding failed: {error}") from error

    def accept(self, token: int) -> None:
        """The token that was sampled (or forced) this step."""
        try:
            self._accept(token)
        except RuntimeError as error:
            raise AdamError(f"constrained decoding failed: {error}") from error

    def _mask(self, logits: Any) -> None:
        if self.done:
            self._only(logits, self._end_ids)
            return
        if not self._forced:
            self._forced = self._tokens_to_force()
        if self._forced:
            self._only(logits, self._torch.tensor(self._forced[:1]))
            return
        phase = self._phase
        if phase.format is None:
            if phase.required:
                logits[self._end_ids] = float("-inf")
            return
        self._fill(self._matcher, self._bitmask)
        self._bitmask &= self._grammars.json_safe_bits()
        self._xgrammar.apply_token_bitmask_inplace(
            logits.view(1, -1), self._bitmask.to(logits.device),
            vocab_size=min(self._vocab_size, logits.shape[-1]))
        if self._in_closing_zone:
            self._keep_closing_path(logits)

    def _accept(self, token: int) -> None:
        self._generated += 1
        if self._forced and self._forced[0] == token:
            self._forced.pop(0)
        else:
            self._forced.clear()
        if self.done:
            return
        if token in self._end_set:  # the turn ends here (the backend stops)
            self.done = True
            self._matcher = None
            return
        text = self._piece(token)
        phase = self._phase
        if self._matcher is not None and not self._matcher.accept_token(token):
            return  # not allowed by the mask: only when a caller skipped it; keep going
        self._text += text
        # inside a string only a quote (or an escape) can end it and open something new
        marks = set(text) & (_QUOTE_TEXT if self._in_string else _STRUCTURAL_TEXT)
        self._opened = self._opened or bool(marks)
        if phase.until is not None and phase.until in self._text:
            rest = self._text.split(phase.until, 1)[1]
            self._advance()
            if rest and self._matcher is not None:
                self._matcher.accept_string(rest.encode())
            self._text = rest
        elif self._matcher is not None and self._complete(self._matcher):
            if phase.ends_answer:
                self.done = True
                self._matcher = None
            else:
                self._advance()

    # -- phases --------------------------------------------------------------------------
    @property
    def _phase(self) -> Phase:
        return self._plan.phases[self._index]

    def _enter(self, index: int) -> None:
        self._index = index
        self._text = ""
        fmt = self._plan.phases[index].format
        self._matcher = (None if fmt is None else self._xgrammar.GrammarMatcher(
            self._grammars.compiled(fmt)))

    def _advance(self) -> None:
        following = self._index + 1
        if following < len(self._plan.phases):
            self._enter(following)
        elif self._plan.loop_from is not None:
            self._enter(self._plan.loop_from)
        else:
            self.done = True
            self._matcher = None

    def _complete(self, matcher: Any) -> bool:
        """The grammar is complete and nothing but the end may follow."""
        if matcher.is_terminated():
            return True
        if not matcher.is_completed():
            return False
        self._fill(matcher, self._probe)
        allowed = self._probe[0]
        words = self._torch.nonzero(allowed).flatten().tolist()
        for word in words:
            bits = int(allowed[word]) & 0xFFFFFFFF
            for bit in range(32):
                if bits >> bit & 1 and word * 32 + bit not in self._grammars.end_ids:
                    return False
        return True

    # -- budgets -------------------------------------------------------------------------
    def _tokens_to_force(self) -> list[int]:
        phase, remaining = self._phase, self._max_new - self._generated
        if phase.format is None:
            if (phase.required and self._thinking_budget is not None
                    and self._generated >= self._thinking_budget):
                return self._grammars.encode(str(phase.until).encode())
            return []
        near = remaining <= len(self._closing_path) + 2 * CLOSING_ZONE + self._growth
        if not (near or self._opened or self._generated >= self._next_check):
            return []
        closing = self.closing(self._matcher)
        if closing is None:
            return []
        tokens = self._grammars.encode(closing)
        # Only a token with JSON structure in it (a new key, item, value) can make the
        # closing longer; look again after one, near the end, and every 16 tokens anyway.
        self._opened = False
        self._in_string = bool(_STRING_ONLY & set(self._allowed_bytes(self._matcher)))
        self._next_check = self._generated + 16
        if tokens and len(tokens) + FORCE_MARGIN >= remaining:
            self.closed_early = True
            return tokens
        self._in_closing_zone = len(tokens) + CLOSING_ZONE + self._growth >= remaining
        self._closing_path = tokens
        return []

    def _keep_closing_path(self, logits: Any) -> None:
        """Near the budget: tokens that continue what is being written (no structure), that
        start the closing path, or (of the model's likeliest few) that open something which
        can still be closed in the budget left; no others (those less likely than a kept
        token are not tried: the model has a good way on)."""
        torch = self._torch
        keep = self._grammars.plain_tokens().clone()
        closing = b"".join(self._grammars.pieces[t] for t in self._closing_path)
        for length in range(1, min(48, len(closing)) + 1):
            token = self._grammars.token_spelling(closing[:length])
            if token is not None:
                keep[token] = True
        size = min(len(keep), logits.shape[-1])
        head = logits[:size]
        kept = keep[:size].to(head.device)
        best_kept = torch.where(kept, head, torch.tensor(float("-inf"))).max()
        # only structural tokens the model prefers to everything kept are worth a look
        candidates = torch.isfinite(head) & ~kept & (head > best_kept)
        if candidates.any():
            scores = torch.where(candidates, head, torch.tensor(float("-inf")))
            count = min(LOOKAHEAD_TOKENS, int(candidates.sum()))
            room = self._max_new - self._generated - 1  # after this token
            for token in torch.topk(scores, count).indices.tolist():
                probe = self._matcher.fork()
                if probe.accept_token(token):
                    after = self.closing(probe)
                    if after is not None and len(self._grammars.encode(after)) <= room:
                        keep[token] = True
        head.masked_fill_(~keep[:size].to(head.device), float("-inf"))

    def _smallest_answer(self, max_new: int) -> int:
        """Tokens the smallest complete answer takes (0 when free text may end it); refuse
        the request when it cannot fit in ``max_new``."""
        if self._plan.answer is None:
            return 0
        needed = self._grammars.smallest.get(self._plan.answer_key)
        if needed is None:
            matcher = self._xgrammar.GrammarMatcher(
                self._grammars.compiled(self._plan.answer))
            closing = self.closing(matcher)
            needed = len(self._grammars.encode(closing)) if closing is not None else 0
            self._grammars.smallest[self._plan.answer_key] = needed
        if not needed:
            return 0
        self._growth = min(needed, MAX_GROWTH)
        if needed > max_new:
            raise InvalidRequestError(
                f"the shortest answer this schema allows takes about {needed} tokens, more "
                f"than max_tokens={max_new}; raise max_tokens (or num_predict)")
        return needed + len(self._grammars.encode(b"</think>\n"))

    def closing(self, matcher: Any, *, limit: int = MAX_CLOSING_BYTES,
                look_ahead: bool = True) -> bytes | None:
        """A short text that completes the grammar from ``matcher``'s state (which stays as
        it is), or None when none is found.

        Greedy, byte by byte, over what the grammar allows next: close what is open, else
        the shortest value. Where a few bytes are allowed and none closes anything (the
        first letter of a key, say, where one key leads to a deep required structure and
        another does not), each is tried ahead and the shortest way taken. A choice that
        leaves the grammar where it was (a loop, say ``a*b``) is not taken twice in a row:
        the first byte that changes the allowed set is taken instead. Keys are not repeated
        within an object the closing writes.
        """
        probe = matcher.fork()
        out = bytearray()
        keys = _Keys()
        seen: dict[bytes, int] = {}
        attempts: dict[bytes, set[int]] = {}
        for _ in range(limit):
            if probe.is_completed():
                return bytes(out)
            allowed = self._allowed_bytes(probe)
            if not allowed:
                return None
            in_string = bool(_STRING_ONLY & set(allowed))
            if in_string:
                allowed = bytes(sorted(allowed, key=_STRING_RANK.__getitem__))
            if allowed[0] == _QUOTE and keys.repeats_if_closed():
                allowed = allowed[1:] + allowed[:1]
            seen[allowed] = seen.get(allowed, 0) + 1
            tried = attempts.setdefault(allowed, set())
            if seen[allowed] > 1:
                choice = self._way_out(probe, allowed, tried)
            elif (look_ahead and 1 < len(allowed) <= LOOKAHEAD_CHOICES
                  and allowed[0] not in _CLOSERS):
                choice = self._shortest_way(probe, allowed)
            else:
                choice = allowed[0]
            tried.add(choice)
            if choice in _STRUCTURAL and not in_string:
                seen.clear()
                attempts.clear()
            probe.accept_token(self._token_of(choice))
            out.append(choice)
            keys.push(choice)
        return None

    def _shortest_way(self, matcher: Any, allowed: bytes) -> int:
        """The allowed byte after which the (greedy) closing is shortest."""
        best, best_length = allowed[0], None
        for byte in allowed:
            if byte in _WHITESPACE:
                continue
            probe = matcher.fork()
            probe.accept_token(self._token_of(byte))
            rest = self.closing(probe, limit=LOOKAHEAD_BYTES, look_ahead=False)
            if rest is not None and (best_length is None or len(rest) < best_length):
                best, best_length = byte, len(rest)
        return best

    def _way_out(self, matcher: Any, allowed: bytes, tried: set[int]) -> int:
        """Back where the grammar was before: the first byte not tried here yet after which
        the grammar allows something else (else the first not tried)."""
        fresh = [byte for byte in allowed if byte not in tried] or list(allowed)
        same = set(allowed)
        for byte in fresh:
            probe = matcher.fork()
            probe.accept_token(self._token_of(byte))
            if probe.is_completed() or set(self._allowed_bytes(probe)) != same:
                return byte
        return fresh[0]

    def _allowed_bytes(self, matcher: Any) -> bytes:
        """The single bytes the grammar allows next, in order of preference."""
        self._fill(matcher, self._probe)
        bits = (self._probe_words[self._candidate_words] >> self._candidate_bits) & 1
        return self._candidate_bytes[bits.astype(bool)].tobytes()

    def _token_of(self, byte: int) -> int:
        return int(self._grammars.byte_token(byte))  # type: ignore[arg-type]

    # -- helpers -------------------------------------------------------------------------
    def _fill(self, matcher: Any, bitmask: Any) -> None:
        matcher.fill_next_token_bitmask(bitmask)

    def _only(self, logits: Any, tokens: Any) -> None:
        kept = logits[tokens].clone()
        kept[~self._torch.isfinite(kept)] = 0.0
        logits.fill_(float("-inf"))
        logits[tokens] = kept


class _Keys:
    """The keys of the objects a closing opens, so it never writes one twice (JSON allows
    it, xgrammar does not prevent it, and a parser keeps only the last)."""

    def __init__(self) -> None:
        self._stack: list[set[bytes] | None] = []  # None: an array
        self._string: bytearray | None = None
        self._is_key = False
        self._expect_key = False
        self._escaped = False

    def repeats_if_closed(self) -> bool:
        """Closing the string now would repeat a key of its object."""
        return (self._string is not None and self._is_key and bool(self._stack)
                and self._stack[-1] is not None and bytes(self._string) in self._stack[-1])

    def push(self, byte: int) -> None:
        if self._string is not None:
            if self._escaped:
                self._escaped = False
            elif byte == ord("\\"):
                self._escaped = True
            elif byte == _QUOTE:
                if self._is_key and self._stack and self._stack[-1] is not None:
                    self._stack[-1].add(bytes(self._string))
                self._string = None
                return
            self._string.append(byte)
        elif byte == _QUOTE:
            self._string, self._is_key = bytearray(), self._expect_key
            self._expect_key = False
        elif byte == ord("{"):
            self._stack.append(set())
            self._expect_key = True
        elif byte == ord("["):
            self._stack.append(None)
        elif byte in b"}]":
            if self._stack:
                self._stack.pop()
        elif byte == ord(","):
            self._expect_key = bool(self._stack) and self._stack[-1] is not None
