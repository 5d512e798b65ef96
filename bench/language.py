"""What language detection costs a process: memory, first use, time per customer message.

Measures :mod:`app.inbox.language` (lingua, our five languages, low-accuracy mode) and,
for comparison, the same detector in lingua's high-accuracy mode, each in a fresh
process so their memory does not mix. Memory is the growth of the process's resident
set (``VmRSS``) from before the detector is built to after it has read every sample;
time per message is over 2,000 messages of every length, in every language.

    .venv/bin/python bench/language.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SAMPLES = [
    "Hi, my order hasn't arrived yet, can you check where it is?",
    "ok",
    "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?",
    "merci",
    "Olá, o meu pedido ainda não chegou, vocês podem verificar onde está?",
    "Fui cobrado duas vezes pela mesma assinatura este mês.",
    "مرحبا، طلبي لم يصل بعد، هل يمكنكم التحقق من مكانه؟",
    "سلام، سفارش من هنوز نرسیده، می‌توانید بررسی کنید کجاست؟",
    "The app keeps crashing when I open the settings page. " * 12,
    "L'application plante quand j'ouvre la page des paramètres, " * 12,
]


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(mode: str) -> dict:
    """Build the detector in ``mode`` and run the samples (in this process)."""
    from app.inbox import language

    if mode == "high":
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = [getattr(IsoCode639_1, c.upper()) for c in language.LANGUAGES]
        language._build = lambda: LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()
    before = _rss_kib()
    started = time.perf_counter()
    language.detect("Bonjour, ma commande n'est pas arrivée")
    first_ms = (time.perf_counter() - started) * 1000
    language.detect("Where is my package, please?")  # the other models load on first need
    times = []
    for i in range(2000):
        text = SAMPLES[i % len(SAMPLES)]
        t0 = time.perf_counter()
        language.detect(text)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "mode": mode,
        "rss_mib": round((_rss_kib() - before) / 1024, 1),
        "first_call_ms": round(first_ms, 1),
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(len(times) * 0.99)], 3),
        "max_ms": round(times[-1], 3),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2])))
        return
    print(f"{'mode':<6} {'memory':>9} {'first use':>10} {'p50':>9} {'p99':>9} {'max':>9}")
    for mode in ("low", "high"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['mode']:<6} {r['rss_mib']:>6} MiB {r['first_call_ms']:>7} ms "
            f"{r['p50_ms']:>6} ms {r['p99_ms']:>6} ms {r['max_ms']:>6} ms"
        )


if __name__ == "__main__":
    main()
