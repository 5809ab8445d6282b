"""One sampler per spec field, all of one signature: `sample(rng, subject) -> value`, where `rng` is the
generator of the field's own component (DESIGN §5) and `subject` the `Subject` drawn for.

`make_spec` draws the fields of `SPEC_FIELDS[kind]` in order through `draw`; a field drawn later may
read earlier ones from `subject.drawn` (the hair reads the identity, the accessories the hairstyle).
"""

from __future__ import annotations

from datagen.samplers.clothing import sample_accessories, sample_clothing
from datagen.samplers.expression import sample_expression
from datagen.samplers.hair import sample_hair
from datagen.samplers.identity import sample_identity
from datagen.samplers.lighting import sample_lighting
from datagen.samplers.makeup import sample_makeup
from datagen.samplers.objects import sample_objects
from datagen.samplers.pose import sample_pose
from datagen.samplers.subject import Subject
from datagen.samplers.views import sample_views

# spec field -> (the component whose generator the sampler draws from, the sampler)
SAMPLERS = {
    "identity": ("identity", sample_identity),
    "expression": ("expression", sample_expression),
    "makeup": ("makeup", sample_makeup),
    "hair": ("hair", sample_hair),
    "clothing": ("clothing", sample_clothing),
    "accessories": ("accessories", sample_accessories),
    "pose": ("pose", sample_pose),
    "lighting": ("lighting", sample_lighting),
    "views": ("cameras", sample_views),
    "objects": ("objects", sample_objects),
}
# The drawn fields of each --kind, in spec.json's order (every field after those it reads).
SPEC_FIELDS = {
    "heads": ("identity", "expression", "makeup", "hair", "clothing", "accessories", "pose", "lighting", "views"),
    "objects": ("objects", "lighting", "views"),
}


def draw(field: str, subject: Subject):
    """Spec field `field` of `subject`, drawn on its component's generator and kept in `subject.drawn`."""
    component, sample = SAMPLERS[field]
    subject.drawn[field] = sample(subject.rng(component), subject)
    return subject.drawn[field]
