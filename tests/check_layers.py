#!/usr/bin/env python3
"""QKLab — the engine's layering, checked: a file in engine/<layer>/ may include only headers of its
own layer and of the layers listed before it (engine/CMakeLists.txt: core, model, data, io,
analysis, train, inspect, cli), and never Qt. Also: ui/ headers never include torch, and ui/'s
folders (worker, figures, views, report, window) include only their own and earlier folders. Exits 1 naming
every offending include."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
layers = ["core", "model", "data", "io", "analysis", "train", "sweep", "inspect", "cli"]
where = {}  # header name -> layer
for i, layer in enumerate(layers):
    for h in (root / "engine" / layer).glob("*.h"):
        where[h.name] = i
bad = []
inc = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)
for i, layer in enumerate(layers):
    for f in sorted((root / "engine" / layer).glob("*.[ch]*")):
        for name in inc.findall(f.read_text(encoding="utf-8")):
            if name.startswith("Q") or name.startswith("qcustomplot"):
                bad.append(f"{f.relative_to(root)}: includes Qt header {name} (the engine never includes Qt)")
            j = where.get(name)
            if j is not None and j > i:
                bad.append(f"{f.relative_to(root)}: includes {name} from engine/{layers[j]} (a later layer than {layer})")
# Engine headers that bring in torch, directly or through other engine headers.
deps = {h.name: set(inc.findall(h.read_text(encoding="utf-8"))) for h in root.glob("engine/*/*.h")}
torch_headers = {n for n, d in deps.items() if any(x.startswith("torch/") for x in d)}
grew = True
while grew:
    more = {n for n, d in deps.items() if d & torch_headers} - torch_headers
    torch_headers |= more
    grew = bool(more)
# ui/ in folders that read like the GUI, layered the same way: worker → figures → views → report →
# window. A file includes ui headers of its own folder and of the folders before it only.
ui_layers = ["worker", "figures", "views", "report", "window"]
ui_where = {}
for i, folder in enumerate(ui_layers):
    for h in (root / "ui" / folder).glob("*.h"):
        ui_where[h.name] = i
stray = [f for f in (root / "ui").glob("*.[ch]*")]
for f in stray:
    bad.append(f"{f.relative_to(root)}: a ui file outside the folders {ui_layers}")
for i, folder in enumerate(ui_layers):
    for f in sorted((root / "ui" / folder).glob("*.[ch]*")):
        for name in inc.findall(f.read_text(encoding="utf-8")):
            j = ui_where.get(name)
            if j is not None and j > i:
                bad.append(f"{f.relative_to(root)}: includes {name} from ui/{ui_layers[j]} (a later folder than {folder})")
for f in sorted((root / "ui").glob("*/*.h")):
    for name in inc.findall(f.read_text(encoding="utf-8")):
        if name.startswith("torch/") or name in torch_headers:
            bad.append(f"{f.relative_to(root)}: includes {name}, which brings in torch (ui headers stay torch-free)")
for b in bad:
    print(b)
print(f"layers: {len(where)} engine headers in {len(layers)} layers, {len(ui_where)} ui headers in {len(ui_layers)} "
      f"folders checked; {len(bad)} problem(s)")
sys.exit(1 if bad else 0)
