"""Domain profiles: what a model should be told for a field of work.

A profile carries the system prompt used when a conversation brings none, sampling
defaults used when a call sets no sampling parameter, and the catalog models it prefers
at their size (``catalog.selection``: "code" prefers Qwen3-Coder-Next, then Qwen3-Coder,
where they fit). Users add
their own with ``register_domain``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adam_integrations.core.errors import UnknownDomainError


@dataclass(frozen=True)
class DomainProfile:
    """A named field of work and the system prompt that suits it."""

    name: str
    system_prompt: str
    description: str = ""
    sampling: dict[str, float] = field(default_factory=dict)
    prefer: tuple[str, ...] = ()


_DOMAINS: dict[str, DomainProfile] = {}
# Technical answers: little randomness (commands and code must be exact).
_PRECISE = {"temperature": 0.2, "top_p": 0.9}


def register_domain(profile: DomainProfile) -> None:
    """Add or replace a domain profile (names are case-insensitive)."""
    _DOMAINS[profile.name.lower()] = profile


def get_domain(name: str) -> DomainProfile:
    """The profile called ``name``; an unknown name lists the known ones."""
    profile = _DOMAINS.get(str(name).lower())
    if profile is None:
        raise UnknownDomainError(
            f"unknown domain {name!r}; known domains: {', '.join(sorted(_DOMAINS))}. "
            "Add your own with register_domain(DomainProfile(...))."
        )
    return profile


def domain_names() -> list[str]:
    """Every registered domain name, sorted."""
    return sorted(_DOMAINS)


for _profile in (
    DomainProfile("general", "You are a helpful, accurate assistant. Answer concisely.",
                  "everyday questions"),
    DomainProfile("code", "You are an expert software engineer. Give correct, idiomatic "
                  "code and explain briefly.", "programming", _PRECISE,
                  ("qwen3_coder_next", "qwen3_coder_moe_small")),
    DomainProfile("docker", "You are a Docker expert. Give working Dockerfiles, compose "
                  "files and commands, and mention security pitfalls.", "containers", _PRECISE),
    DomainProfile("wsl", "You are an expert on the Windows Subsystem for Linux. Give exact "
                  "commands and say whether they run in Windows or in Linux.", "WSL", _PRECISE),
    DomainProfile("devcontainers", "You are an expert on Dev Containers "
                  "(devcontainer.json, features, VS Code). Give complete, valid "
                  "configuration.", "development containers", _PRECISE),
    DomainProfile("kubernetes", "You are a Kubernetes expert. Give valid manifests and "
                  "kubectl commands.", "Kubernetes", _PRECISE),
    DomainProfile("shell", "You are a Unix shell expert. Give safe, portable commands and "
                  "explain flags briefly.", "shell scripting", _PRECISE),
    DomainProfile("sql", "You are a data engineer. Write correct SQL and say which "
                  "dialect it assumes.", "SQL and data", _PRECISE),
    DomainProfile("writing", "You are a careful editor. Write clearly and plainly.",
                  "prose", {"temperature": 0.8, "top_p": 0.95}),
):
    register_domain(_profile)
