"""The run's plan, computed, never materialised: subjects in (identity, appearance) order, cut into
shards of `subjects_per_shard`. Shard k always holds the same subjects, so a rerun knows what each
shard must contain, and a 100-million-subject plan costs no memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from datagen.shard_format import key_subject, subject_key


@dataclass(frozen=True)
class Plan:
    identities: int
    appearances: int
    subjects_per_shard: int

    @classmethod
    def of(cls, cfg) -> Plan:
        """From a DatagenConfig or a card's config dict."""
        get = cfg.get if isinstance(cfg, dict) else lambda k: getattr(cfg, k)
        return cls(int(get("identities")), int(get("appearances")), int(get("subjects_per_shard")))

    @property
    def subjects(self) -> int:
        return self.identities * self.appearances

    @property
    def shard_count(self) -> int:
        return -(-self.subjects // self.subjects_per_shard)

    def shard_size(self, k: int) -> int:
        return min(self.subjects_per_shard, self.subjects - k * self.subjects_per_shard)

    def shard_subjects(self, k: int) -> list[tuple[int, int]]:
        start = k * self.subjects_per_shard
        return [divmod(n, self.appearances) for n in range(start, start + self.shard_size(k))]

    def shard_keys(self, k: int) -> list[str]:
        return [subject_key(i, j) for i, j in self.shard_subjects(k)]

    def index_of(self, key: str) -> int | None:
        """The subject's position in plan order, or None if the key is not planned."""
        subject = key_subject(key)
        if subject is None:
            return None
        i, j = subject
        return i * self.appearances + j if i < self.identities and j < self.appearances else None

    def shard_of(self, key: str) -> int | None:
        n = self.index_of(key)
        return None if n is None else n // self.subjects_per_shard

    def subject_of(self, key: str) -> tuple[int, int]:
        return divmod(self.index_of(key), self.appearances)
