"""Time the diffusion model's browser page: DDIM at 50 steps in TF.js, in headless Chromium, as its user sees it.

The page (serving/web/js/projects/diffusion.js) samples `IMAGES` images at once, draws every step and reports
"<steps> steps: <ms> ms per image in <backend>"; this opens it over a trained run's TF.js denoiser, sets the steps
slider to 50, samples and reads that line. `make project=diffusion bench` runs it after its own figures; alone:
`python -m benchmarks.diffusion_browser --output-dir DIR` over the folder of a run that was trained and exported
(`python -m benchmarks.diffusion --output-dir DIR` leaves one). Writes benchmarks/results/diffusion_browser.json.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from common.config import make_config
from common.paths import ArtifactPaths
from common.web_demo import CHROMIUM, CHROMIUM_FLAGS, make_server, write_samples
from projects.diffusion import config
from projects.diffusion.project import PROJECT

from .runs import write_results

STEPS = 50
IMAGES = 4  # what the page samples at once (IMAGES in serving/web/js/projects/diffusion.js)


def browser_ms_per_image(out: Path, preset: str) -> tuple[float, str]:
    """The browser page (demo.html?project=diffusion, headless Chromium) over the run's TF.js denoiser sampling at
    `STEPS` steps: milliseconds per image as the page reports them to its user (drawing each step included),
    and the TF.js backend that ran them."""
    cfg = make_config(config.CONFIG, config.PRESETS, preset)
    write_samples(PROJECT, cfg, ArtifactPaths.for_project("diffusion", out))
    server = make_server("127.0.0.1", 0, out.parent, {"diffusion": out / "export" / "tfjs"})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state, report = "document.body.dataset.state", "document.querySelector('#progress').textContent"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/demo.html?project=diffusion")
            page.wait_for_function(f"['ready', 'error', 'missing'].includes({state})", timeout=600_000)
            if page.evaluate(state) != "ready":
                raise RuntimeError(f"the demo page did not load the model: {page.inner_text('main')}")
            page.wait_for_function(f"{report}.includes('ms per image')", timeout=600_000)  # the page's first run
            page.evaluate(f"{report} = ''")  # so that only the timed run's line can end the wait below
            page.fill("#steps", str(STEPS))
            page.dispatch_event("#steps", "input")
            page.click("#sample")
            page.wait_for_function(f"{report}.startsWith('{STEPS} steps:')", timeout=600_000)
            text = page.evaluate(report)
            browser.close()
    finally:
        server.shutdown()
    found = re.search(r"([0-9.]+) ms per image in (\w+)", text)
    if not found:
        raise RuntimeError(f"the page reported {text!r}, not a time per image")
    return float(found.group(1)), found.group(2)


def browser_figures(out: Path, preset: str) -> dict[str, Any]:
    """The results entry: seconds per image at `STEPS` steps in the browser, and how they were measured."""
    ms, backend = browser_ms_per_image(out, preset)
    return {
        "benchmark": f"diffusion browser page: DDIM at {STEPS} steps in TF.js, seconds per image",
        "preset": preset,
        f"seconds_per_image_browser_{STEPS}_steps": round(ms / 1000, 4),
        "browser": f"TF.js {backend} backend in headless Chromium ({CHROMIUM}), {IMAGES} images at once, each "
        "step drawn as the page draws it",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--output-dir", type=Path, required=True, help="a trained and exported run's folder")
    args = parser.parse_args()
    if not (args.output_dir / "export" / "tfjs" / "model.json").exists():
        raise SystemExit(
            f"no TF.js export in {args.output_dir}: run `python -m projects.diffusion export "
            f"--output-dir {args.output_dir}` first"
        )
    result = browser_figures(args.output_dir, args.preset)
    print(json.dumps(result, indent=2))
    write_results("diffusion_browser", result)


if __name__ == "__main__":
    main()
