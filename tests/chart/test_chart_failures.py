"""Every bad value fails `helm template` and `helm lint`, with Helm 3 and Helm 4, naming the value.

Schema failures (values.schema.json) name the path of the value; the combination checks of
templates/validate.yaml name the value and say what to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from chartkit import CHART, KUBE_VERSION, helm_args, run, tool


@dataclass(frozen=True)
class Bad:
    id: str
    values: str  # YAML merged over the chart defaults
    expect: str  # regex the error output must match
    sets: dict[str, str] = field(default_factory=dict)
    with_release: bool = True  # pass RELEASE first, as an environment's release.yaml does


CANARY = """
rollout: {strategy: canary, canary: {weight: 10}}
slots: {canary: {imageTag: "0.2.0", modelVersion: "2026.11.20-b2c3d4e"}}
"""
SHADOW = """
rollout: {strategy: shadow, shadow: {percent: 25}}
slots: {shadow: {imageTag: "0.2.0", modelVersion: "2026.11.20-b2c3d4e"}}
"""

# The stable slot every case deploys unless it says otherwise: the chart has no default release.
RELEASE = """
slots: {stable: {imageTag: "0.1.0", modelVersion: "2026.11.01-1a2b3c4"}}
"""

SCHEMA = [
    Bad("unknown-strategy", "rollout: {strategy: rainbow}", r"rollout[./]strategy"),
    Bad(
        "weight-above-100",
        CANARY + "rollout: {strategy: canary, canary: {weight: 120}}",
        r"rollout[./]canary[./]weight",
    ),
    Bad("negative-weight", "rollout: {canary: {weight: -5}}", r"rollout[./]canary[./]weight"),
    Bad(
        "shadow-percent-above-100",
        SHADOW + "traffic: {provider: router}\nrollout: {strategy: shadow, shadow: {percent: 150}}",
        r"rollout[./]shadow[./]percent",
    ),
    Bad(
        "shadow-percent-three-decimals",
        SHADOW + "traffic: {provider: router}\n"
        "rollout: {strategy: shadow, shadow: {percent: 1.005}}",
        r"rollout[./]shadow[./]percent",
    ),
    Bad("unknown-provider", "traffic: {provider: linkerd}", r"traffic[./]provider"),
    Bad("unknown-platform", "platform: lambda", r"platform"),
    Bad("unknown-model-source", "model: {source: s3}", r"model[./]source"),
    Bad(
        "unknown-colour",
        "rollout: {blueGreen: {activeColor: red}}",
        r"rollout[./]blueGreen[./]activeColor",
    ),
    Bad("unknown-top-level-key", "replicas: 3", r"replicas"),
    Bad("unknown-slot-key", "slots: {stable: {tag: '0.1.0'}}", r"slots[./]stable|tag"),
    Bad(
        "malformed-sha256",
        "slots: {stable: {modelSha256: not-a-sha}}",
        r"slots[./]stable[./]modelSha256",
    ),
    Bad(
        "image-tag-with-space",
        "slots: {stable: {imageTag: '0.1 beta'}}",
        r"slots[./]stable[./]imageTag",
    ),
    Bad(
        "cpu-request-not-a-quantity",
        "resources: {requests: {cpu: lots}}",
        r"resources[./]requests[./]cpu",
    ),
    Bad(
        "router-memory-not-a-quantity",
        "traffic: {router: {resources: {limits: {memory: 128MB}}}}",
        r"traffic[./]router[./]resources[./]limits[./]memory",
    ),
    Bad(
        "image-digest-not-sha256",
        "slots: {stable: {imageDigest: 'sha256:1234'}}",
        r"slots[./]stable[./]imageDigest",
    ),
    Bad(
        "canary-header-value-control-character",
        'rollout: {canary: {header: {value: "a\\tb"}}}',
        r"rollout[./]canary[./]header[./]value",
    ),
    Bad("worker-processes-auto", "traffic: {router: {workerProcesses: auto}}", r"workerProcesses"),
    Bad("body-limit-below-1-kib", "maxBodyBytes: 1023", r"maxBodyBytes"),
    Bad("body-limit-above-1-gib", "maxBodyBytes: 1073741825", r"maxBodyBytes"),
    Bad("body-limit-with-a-unit", "maxBodyBytes: 8Mi", r"maxBodyBytes"),
    Bad(
        "green-slot-empty",
        "rollout: {strategy: blueGreen}\nslots: {blue: {imageTag: a, modelVersion: b}}",
        r"slots[./]green",
    ),
    Bad(
        "knative-blue-green",
        "platform: knative\nrollout: {strategy: blueGreen}\n"
        "slots: {blue: {imageTag: a, modelVersion: b}, green: {imageTag: c, modelVersion: d}}",
        r"rollout[./]strategy",
    ),
    Bad(
        "gateway-without-parent",
        "traffic: {provider: gatewayAPI}",
        r"traffic[./]gatewayAPI[./]parentRefs",
    ),
]

VALIDATE = [
    Bad(
        "chart-defaults",
        "{}",
        r"slots\.stable\.imageTag is empty: rollout\.strategy=rolling deploys the stable slot; "
        r"set the image tag it runs",
        with_release=False,
    ),
    Bad(
        "canary-slot-empty",
        "rollout: {strategy: canary}",
        r"slots\.canary\.imageTag is empty: rollout\.strategy=canary deploys the canary slot",
    ),
    Bad(
        "surge-and-unavailable-zero",
        "rollout: {rolling: {maxSurge: 0, maxUnavailable: 0}}",
        r"rollout\.rolling\.maxSurge=0 and rollout\.rolling\.maxUnavailable=0: both 0",
    ),
    Bad(
        "cpu-request-above-limit",
        "resources: {requests: {cpu: '2'}, limits: {cpu: 1500m}}",
        r"resources\.requests\.cpu=2 is above resources\.limits\.cpu=1500m",
    ),
    Bad(
        "header-stickiness-underscore",
        CANARY + "traffic: {provider: router}\n"
        "rollout: {strategy: canary, canary: {stickiness: {mode: header, name: x_user}}}",
        r'rollout\.canary\.stickiness\.name "x_user": a header name may hold only letters',
    ),
    Bad(
        "body-limit-in-extra-env",
        "extraEnv: [{name: NEPSE_MAX_BODY_BYTES, value: '16777216'}]",
        r"extraEnv\[0\] sets NEPSE_MAX_BODY_BYTES: set maxBodyBytes instead",
    ),
    Bad(
        "grace-period-below-prestop-pause",
        "preStopSleepSeconds: 30\nterminationGracePeriodSeconds: 30",
        r"terminationGracePeriodSeconds=30 must exceed preStopSleepSeconds=30 by at least 5",
    ),
    Bad(
        "shadow-without-provider",
        SHADOW,
        r"rollout\.strategy=shadow needs traffic\.provider router, istio or gatewayAPI: "
        r"plain Services \(traffic\.provider=none\) cannot mirror requests",
    ),
    Bad(
        "quarantined-image-tag",
        CANARY + "quarantine: {imageTags: ['0.2.0']}",
        r'slots\.canary\.imageTag "0\.2\.0" is quarantined \(listed in quarantine\.imageTags\)',
    ),
    Bad(
        "quarantined-model-version",
        "quarantine: {modelVersions: ['2026.11.01-1a2b3c4']}",
        r'slots\.stable\.modelVersion "2026\.11\.01-1a2b3c4" is quarantined',
    ),
    Bad(
        "url-source-without-sha",
        "model: {source: url, url: {base: 'https://m.example.com'}}",
        r'slots\.stable\.modelSha256 "" is not a sha256',
    ),
    Bad(
        "header-stickiness-with-istio",
        CANARY + "traffic: {provider: istio}\n"
        "rollout: {strategy: canary, canary: {stickiness: {mode: header, name: x-user}}}",
        r"rollout\.canary\.stickiness\.mode=header is not possible with traffic\.provider=istio",
    ),
    Bad(
        "stickiness-without-provider",
        CANARY + "rollout: {strategy: canary, canary: {stickiness: {mode: cookie, name: u}}}",
        r"rollout\.canary\.stickiness\.mode=cookie needs a traffic provider",
    ),
    Bad(
        "knative-with-hpa",
        "platform: knative\nautoscaling: {enabled: true}",
        r"autoscaling\.enabled=true is not supported with platform=knative",
    ),
    Bad(
        "hpa-max-below-min",
        "autoscaling: {enabled: true, minReplicas: 6, maxReplicas: 3}",
        r"autoscaling\.maxReplicas=3 is smaller than autoscaling\.minReplicas=6",
    ),
]


def _fail_output(helm: str, verb: str, bad: Bad, tmp_path) -> str:
    values = tmp_path / "values.yaml"
    values.write_text(bad.values)
    files = [values]
    if bad.with_release:
        release = tmp_path / "release.yaml"
        release.write_text(RELEASE)
        files.insert(0, release)
    args = [tool(helm), verb]
    if verb == "template":
        args.append("nepse-predictor")
    result = run([*args, CHART, "--kube-version", KUBE_VERSION, *helm_args(files, bad.sets)])
    # Helm 4's lint logs the template's `fail` message as an escaped structured-log field.
    output = (result.stdout + result.stderr).replace('\\"', '"').replace("\\n", "\n")
    assert result.returncode != 0, f"{helm} {verb} accepted {bad.id}:\n{output}"
    return output


@pytest.mark.parametrize("verb", ["template", "lint"])
@pytest.mark.parametrize("bad", SCHEMA + VALIDATE, ids=lambda b: b.id)
def test_bad_values_fail_naming_the_value(helm: str, verb: str, bad: Bad, tmp_path) -> None:
    output = _fail_output(helm, verb, bad, tmp_path)
    assert re.search(bad.expect, output), f"{helm} {verb} {bad.id}: no /{bad.expect}/ in:\n{output}"


def test_validation_reports_every_problem_at_once(helm: str, tmp_path) -> None:
    bad = Bad("several", SHADOW + "quarantine: {imageTags: ['0.2.0']}", "")
    output = _fail_output(helm, "template", bad, tmp_path)
    assert 'slots.shadow.imageTag "0.2.0" is quarantined' in output
    assert "rollout.strategy=shadow needs traffic.provider" in output


@pytest.mark.parametrize(
    "values_file", sorted((CHART / "ci").glob("*-values.yaml")), ids=lambda p: p.name
)
def test_every_ci_values_file_lints_clean(helm: str, values_file) -> None:
    result = run(
        [tool(helm), "lint", CHART, "--strict", "--kube-version", KUBE_VERSION, "-f", values_file]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_reports_invalid_values_as_an_error_that_carries_the_message(
    helm: str, tmp_path
) -> None:
    bad = Bad("lint", "rollout: {rolling: {maxSurge: 0, maxUnavailable: 0}}", "")
    output = _fail_output(helm, "lint", bad, tmp_path)
    errors = [line for line in output.splitlines() if line.startswith("[ERROR]")]
    assert len(errors) == 1, output
    assert errors[0].startswith("[ERROR] templates/validate.yaml: "), output
    assert "nepse-predictor: invalid values: rollout.rolling.maxSurge=0 and" in errors[0], output
