"""codealign: curate code instruction data, train specialist adapters, run execution DPO."""
