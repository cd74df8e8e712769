"""``python -m bench [--short] [--out FILE.json]``: the project's benchmark.

Everything the figures of DESIGN §8 are measured with, on this machine and on loopback only:

* **crawl** — a full crawl of all three sources by the real system (worker process, Temporal dev
  server, PostgreSQL, the replay server in a process of its own) against a bare asyncio loop in
  this process doing the same fetch + parse + store with the project's own HTTP client, parsers and
  store, alternating A/B runs at 0 ms and 20 ms of added latency (:mod:`bench.crawl`);
* **unchanged cycle**, **freshness** (:mod:`bench.cycles`), **politeness** with two workers
  (:mod:`bench.politeness`), **requests per day** (:mod:`bench.budget`) and **parse cost**
  (:mod:`bench.parse_cost`).

Every process the bench starts is stopped when it ends, also on Ctrl-C (:mod:`bench.stack`).
A benchmark prints numbers and does not judge them: the exit status is non-zero only when
something is broken (a crawl that lost countries, an unchanged cycle that created versions, a
rate-limit violation, a change never detected).
"""
