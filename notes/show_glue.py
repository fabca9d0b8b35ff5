"""Print every glued value of an executed notebook (name: text), to read the numbers a page would show."""
import json
import sys

nb = json.load(open(sys.argv[1]))
for cell in nb["cells"]:
    for out in cell.get("outputs", []):
        name = out.get("metadata", {}).get("scrapbook", {}).get("name")
        data = {k.rsplit("record/", 1)[-1]: v for k, v in out.get("data", {}).items()}
        text = data.get("text/markdown") or data.get("text/plain")
        if name:
            print(f"{name}: {''.join(text) if isinstance(text, list) else text}")
        elif out.get("output_type") == "error":
            print("ERROR", out.get("ename"), out.get("evalue"))
