"""How differences are named: dotted field paths a user can paste into `drift_ignore`."""

from __future__ import annotations

from syncer.drift import IgnoreRules, compare, normalise


def pod(image: str = "nginx:1", replicas: int = 1) -> dict[str, object]:
    return {
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "ui", "image": image, "args": ["-v", "1"]},
                        {"name": "sidecar", "image": "envoy"},
                    ]
                }
            },
        }
    }


def test_a_changed_scalar_is_named_by_its_dotted_path() -> None:
    fields, _ = compare(pod(replicas=2), pod(replicas=5))
    assert fields == ["spec.replicas"]


def test_containers_are_named_by_their_name_not_their_position() -> None:
    fields, _ = compare(pod(image="nginx:2"), pod(image="nginx:1"))
    assert fields == ["spec.template.spec.containers[name=ui].image"]


def test_plain_lists_are_named_by_index() -> None:
    desired, live = pod(), pod()
    live["spec"]["template"]["spec"]["containers"][0]["args"][1] = "9"  # type: ignore[index]
    fields, _ = compare(desired, live)
    assert fields == ["spec.template.spec.containers[name=ui].args[1]"]


def test_the_repaired_object_keeps_ignored_fields_as_they_are_live() -> None:
    ignore = IgnoreRules.of(["spec.replicas"])
    fields, repaired = compare(pod(image="nginx:2", replicas=2), pod(replicas=5), ignore)
    assert fields == ["spec.template.spec.containers[name=ui].image"]
    assert repaired["spec"]["replicas"] == 5
    assert repaired["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"


def test_an_ignore_rule_covers_everything_below_it_and_star_matches_any_item() -> None:
    ignore = IgnoreRules.of(["spec.template.spec.containers[*].image"])
    fields, _ = compare(pod(image="nginx:2"), pod(image="nginx:1"), ignore)
    assert fields == []
    fields, _ = compare(pod(replicas=3), pod(), IgnoreRules.of(["spec"]))
    assert fields == []


def test_server_set_fields_never_count_as_drift() -> None:
    live = {
        "metadata": {
            "name": "x",
            "resourceVersion": "9",
            "uid": "u",
            "generation": 4,
            "creationTimestamp": "t",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "status": {"readyReplicas": 1},
    }
    assert normalise(live) == {"metadata": {"name": "x"}}
