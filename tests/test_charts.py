"""The chart templates agree before any browser draws them (tests/test_pipeline.py checks the
drawn page in Chromium): one colour per optimizer, and the confusion matrix's orientation."""

import json

import yaml

from tests.helpers import DEFAULTS, REPO

TEMPLATES = ("sweep", "by_optimizer")


def colour_scales(node) -> list[dict]:
    """Every colour scale in a Vega-Lite spec."""
    if isinstance(node, list):
        return [scale for child in node for scale in colour_scales(child)]
    if not isinstance(node, dict):
        return []
    found = [node["color"]["scale"]] if isinstance(node.get("color"), dict) and "scale" in node["color"] else []
    return found + [scale for child in node.values() for scale in colour_scales(child)]


def test_each_optimizer_has_one_colour_in_every_chart_in_the_order_of_params_yaml():
    scales = [
        scale
        for name in TEMPLATES
        for scale in colour_scales(json.loads((REPO / f".dvc/plots/{name}.json").read_text()))
    ]
    assert len(scales) >= len(TEMPLATES)
    optimizers = DEFAULTS["sweep"]["optimizers"]
    for scale in scales:
        assert scale["domain"] == optimizers
        assert scale["range"] == scales[0]["range"] and len(set(scale["range"])) == len(scale["range"])
        assert len(scale["range"]) > len(optimizers)  # an optimizer added later gets its own colour


def string_domains(node) -> list[list[str]]:
    """Every scale domain that lists names (not numbers) in a Vega-Lite spec."""
    if isinstance(node, list):
        return [domain for child in node for domain in string_domains(child)]
    if not isinstance(node, dict):
        return []
    domain = node.get("domain")
    found = [domain] if isinstance(domain, list) and all(isinstance(d, str) for d in domain) else []
    return found + [d for child in node.values() for d in string_domains(child)]


def test_the_sweeps_diverged_strip_lists_the_optimizers_in_the_same_order():
    domains = string_domains(json.loads((REPO / ".dvc/plots/sweep.json").read_text()))
    assert len(domains) == 3 and all(domain == DEFAULTS["sweep"]["optimizers"] for domain in domains)


def test_the_confusion_chart_puts_the_actual_letter_on_rows_like_confusion_png():
    plots = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    [confusion] = [p["metrics/confusion.csv"] for p in plots if isinstance(p, dict) and "metrics/confusion.csv" in p]
    assert (confusion["y"], confusion["x"]) == ("actual", "predicted")
