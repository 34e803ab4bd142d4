"""SilkNet's methods (Dorozynski 2023): single-task baseline and the six multi-task variants of Table 3.

``_fo``: focal weight of eq. 3 with γ = 2 (the focal-loss default, also the SILKNOW code's default);
``rsem``: auxiliary clustering with semantic similarity only; ``rall``: semantic, colour and self-similarity at
0.5 each (eq. 5). All use λ_C = 1 and λ_aux ∈ {0, 1} as in Table 3.
"""

from __future__ import annotations

from artbench.methods.registry import MethodSpec, register_method

# Every row fixes all loss weights, so a task's [defaults] cannot leak into a method's definition.
CE = {"gamma": 0.0, "lambda_c": 1.0}
FOCAL = {"gamma": 2.0, "lambda_c": 1.0}
NO_AUX = {"lambda_aux": 0.0, "alpha_sem": 0.0, "alpha_co": 0.0, "alpha_slf": 0.0}
R_SEM = {"lambda_aux": 1.0, "alpha_sem": 1.0, "alpha_co": 0.0, "alpha_slf": 0.0}
R_ALL = {"lambda_aux": 1.0, "alpha_sem": 0.5, "alpha_co": 0.5, "alpha_slf": 0.5}

register_method(
    MethodSpec(
        "stl",
        "one SilkNet per target, trained on that target's labelled samples (single-task baseline)",
        strategy="single_task",
        config={**CE, **NO_AUX},
        reference="Dorozynski 2023, §1 (STL)",
    )
)

TABLE3_METHODS: dict[str, tuple[str, dict[str, float]]] = {
    "mtl": ("multi-task SilkNet, softmax cross-entropy over available labels (eq. 2, γ = 0)", {**CE, **NO_AUX}),
    "mtl_fo": ("multi-task SilkNet with the focal multi-task loss (eq. 2-4, γ = 2)", {**FOCAL, **NO_AUX}),
    "mtl_rsem": ("MTL + auxiliary semantic-similarity clustering (eq. 6; λ_aux = α_sem = 1)", {**CE, **R_SEM}),
    "mtl_rall": (
        "MTL + semantic, colour and self-similarity clustering (eq. 5-8; α = 0.5 each)",
        {**CE, **R_ALL},
    ),
    "mtl_fo_rsem": ("focal MTL (γ = 2) + semantic-similarity clustering", {**FOCAL, **R_SEM}),
    "mtl_fo_rall": (
        "focal MTL (γ = 2) + semantic, colour and self-similarity clustering (best in Table 4)",
        {**FOCAL, **R_ALL},
    ),
}
"""The rows of Table 3: name → (description, config)."""

for _name, (_description, _config) in TABLE3_METHODS.items():
    register_method(MethodSpec(_name, _description, config=_config, reference="Dorozynski 2023, Table 3"))
