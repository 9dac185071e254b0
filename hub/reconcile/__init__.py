"""Reconciliation: prove that the CRM, the ledger and each back office agree, heal what is safe to
heal, and hand the rest to the owning team.

- ``findings``: the finding classes (stable codes) and the value-free ``Finding``;
- ``core``: the pure comparison (sorted, keyed streams in, findings out; a merge-join);
- ``extsort``: an external sort (bounded memory) for streams that do not come sorted;
- ``sources``: the I/O at the edges (the ledger's streamed SELECTs, ``Connector.records()``,
  the CRM's ``iter_case_states()``);
- ``heal``: what heals itself, and the work items for what does not;
- ``engine``: one run per system, stored in the ledger (``reconcile_runs``, ``reconcile_findings``).

Nothing here imports Airflow; the DAG (``hub.orchestration.reconcile_dag``) and the CLI
(``hub reconcile``) call ``engine.reconcile_system``.
"""
