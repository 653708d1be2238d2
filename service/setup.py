"""The compiled part of the package: the tree evaluator (src/nepse_predictor/_trees.c).

It is optional: where no C compiler is at hand the package installs without it, and the
service serves with ONNX Runtime (NEPSE_BACKEND=auto says which it chose).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "nepse_predictor._trees",
            ["src/nepse_predictor/_trees.c"],
            extra_compile_args=["-O3", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
