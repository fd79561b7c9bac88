"""Prints README's N-th set-up command (N = 1 or 2): the N-th ```bash block under '## Set up'.

CI runs exactly what README tells a newcomer to paste, so the two cannot drift apart.
"""

import re
import sys

text = open("README.md", encoding="utf-8").read()
section = re.search(r"^## Set up\n(.*?)(?=^## )", text, flags=re.M | re.S)
if section is None:
    sys.exit("README.md has no '## Set up' section")
blocks = re.findall(r"^```bash\n(.*?)^```", section.group(1), flags=re.M | re.S)
n = int(sys.argv[1])
if len(blocks) < n:
    sys.exit(f"README.md's '## Set up' has {len(blocks)} bash block(s); wanted block {n}")
print(blocks[n - 1].strip())
