"""Preference and RL fine-tuning for lathe (``rl:`` in the config): DPO, IPO, KTO, ORPO, SimPO, CPO."""
