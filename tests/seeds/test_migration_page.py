"""docs/migrating.md has one table per earlier system, and each table names every API name, flag, config key,
script and module that system's README uses (the READMEs are in ../shared/seeds/; their names are listed here
so the check runs without them)."""

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"

# Every name the seed README uses, as it spells it (a section must contain it verbatim).
SEED_NAMES = {
    "Infinity Dual Hybrid": [  # 000_119bd4597e59ad9d.txt
        "get_config_for_env", "build_agent", "PPOTrainer", "make_envs", "InfinityV3DualHybridAgent",
        "cfg.agent.use_miras_in_forward", "cfg.agent.use_ltm_in_forward", "cfg.agent.sync_dims()", "cfg.env_id",
        "cfg.device", "cfg.ppo", "collect_rollouts", "train_step", "mean_reward", "env.close()", "agent.shutdown()",
        "agent.hidden_dim", "backbone.use_mamba", "backbone.use_attention", "ppo.clip_eps", "ppo.learning_rate",
        "ppo.gae_lambda", "python -m infinity_dual_hybrid.train --test", "scripts/train_cartpole_baseline.py",
        "scripts/train_cartpole_miras.py", "scripts/auto_tuner_dual_hybrid.py", "pip install -r requirements.txt",
        "pip install -e .", "python -m pytest tests/ -v", "config.py", "ssm_backbone.py", "miras.py", "ltm.py",
        "agent.py", "ppo_trainer.py", "envs.py", "train.py", "vendor/mamba_ssm", "test_dual_tier_miras_cartpole.py",
        "test_memory_sanity.py", "legacy/", "Fast Tier", "Deep Tier", "retention gate", "IVF-PQ",
    ],
    "CyborgMind V7": [  # 001_1fb7824719812bca.txt
        "TrainerV7", "EncoderV7", "MemoryV7", "RolloutBufferV7", "cyborg_rl.trainers.trainer_v7",
        "train(total_timesteps=...)", "trainer.save", "train_v7.py", "--config", "configs/memory_ppo_v7.yaml",
        "--env", "minerl_treechop", "CartPole-v1", "--encoder", "--memory", "--num-envs", "--horizon", "--burn-in",
        "--amp", "--wandb", '"env"', '"encoder"', '"memory"', '"type"', '"num_slots"', '"horizon"', '"burn_in"',
        "gru", "mamba", "hybrid", "fusion", "PseudoMamba", "pmm", "slot", "kv", "ring", "PMM++",
        "get_initial_state(batch_size, device)", "reset_states(state, mask)", "detach_states(state)",
        "memory.forward_step(hidden, state, mask)", "memory.forward_sequence(hidden_seq, state, masks)",
        "sample_sequences(seq_len, burn_in)", 'batch["obs"]', 'batch["grad_mask"]', "value clip",
        "normalized advantages", "target_kl", "grad-norm", "models/encoder_v7.py", "memory/memory_v7.py",
        "memory/rollout_buffer_v7.py", "trainers/trainer_v7.py", "envs/universal_adapter.py",
    ],
    "hippotorch": [  # 002_8449dc48fad80070.txt
        "pip install hippotorch", "pip install faiss-gpu", "from hippotorch import", "Episode(states=...",
        "DualEncoder(input_dim", "embed_dim", "momentum", "MemoryStore(embed_dim, capacity)",
        "Consolidator(encoder, temperature, reward_weight)", "HippocampalReplayBuffer(memory=",
        "mixture_ratio", "consolidator=", "buffer.add_episode(episode)", "query_state=", "top_k",
        "agent.update(batch)", "buffer.consolidate(steps, batch_size, report_quality=True)", "WakeSleepTrainer",
        "SB3ReplayBufferWrapper(buffer, segmenter=TerminalSegmenter())",
        "sb3_buffer.add(obs, next_obs, action, reward, done)",
        "push_memory_to_hub(memory, repo_id=..., private=...)", "load_memory_from_hub(repo_id)",
        "buffer.save_to_hub(repo_id)", "buffer.load_memory_from_hub(repo_id)", "hippotorch.utils.hub",
        "scripts/run_rank_ablation.sh", "scripts/run_consolidation_micro.sh", "scripts/quick_cartpole.sh",
        "scripts/corridor_multiseed_zn.sh", "SEEDS", "EPISODES", "CONS_EVERY", "CONS_STEPS",
        "scripts/corridor_curriculum.sh", "scripts/log_tb_embedding.sh", "tensorboard --logdir runs/hippo_tb",
        "docs/benchmarks.md", "docs/curriculum.md",
    ],
    "MMABA-PSEUDO": [  # 003_60709962784645ca.txt
        "neural_memory_long_ppo.py", "--task delayed_cue", "--controller mamba", "--device mps", "cuda",
        "--num-envs", "--total-updates", "--benchmark-suite", "Delayed Cue", "Copy Memory", "Associative Recall",
        "T-Maze", "Update", "Step", "Return", "Len", "GateMean", "KL", "Mamba2(d_model, d_state, d_conv, expand)",
        "mamba_compat", "PseudoModeMemory(num_slots, slot_dim, in_dim, decay)", "--learning-rate", "--gamma",
        "--gae-lambda", "--clip-coef", "--ent-coef", "--vf-coef", "--ppo-epochs", "--gate-coef", "--track",
        "--wandb-project", "--run-name", "train/return_mean", "train/gate_mean", "loss/policy", "loss/value",
        "loss/entropy", "stats/approx_kl", "stats/grad_norm", "--horizon",
    ],
    "Pseudo-Mamba v2": [  # 004_0c806d5185800ad2.txt
        "pseudo-mamba-memory-suite", "pseudo_mamba_memory_suite.py", "--task", "--controller", "--horizon",
        "--steps", "--num-envs", "--log-dir", "--suite basic_v1", "--dry-run", "tiny_sanity", "--overwrite",
        "pseudo_mamba_memory_suite.yaml", "suites:", "runs:", "id:", "controllers:", "steps:",
        "scripts/compare_to_baseline.py", "scripts/plot_results.py", "benchmark_summary.json",
        "results/reference_metrics.json", "pip install -e .[mamba]", "pip install -e .[dev]",
        "get_task_config", "get_benchmark_suite", "python -m pseudo_mamba.benchmarks.registry", "target_success",
        "BaseController", "init_state(batch_size, device)", "forward_step(obs, state)", "reset_mask(state, done_mask)",
        "GRUCell", "--wandb-mode", "--wandb-project", "--device cuda:0", "--resume", "--mamba_d_state",
        "--transformer_n_head", "tests/test_autograd_equivalence.py::test_pseudo_mamba_cpu_fallback",
        "scripts/test_all.sh", "delayed_cue", "copy_memory", "assoc_recall", "n_back", "multi_cue_delay",
        "permuted_copy", "pattern_binding", "distractor_nav", "easy", "medium", "hard", "extreme", "gru",
        "transformer", "pseudo_mamba/controllers", "pseudo_mamba/rlh", "pseudo_mamba/kernels", "ActorCritic",
    ],
}  # fmt: skip


def _sections() -> dict[str, str]:
    text = PAGE.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.parametrize("seed", list(SEED_NAMES))
def test_every_name_of_the_seed_readme_is_in_its_table(seed):
    sections = _sections()
    assert seed in sections, f"docs/migrating.md has no '## {seed}' section"
    body = sections[seed]
    assert "| theirs | ours |" in body, f"the {seed} section has no 'theirs | ours' table"
    missing = [name for name in SEED_NAMES[seed] if name not in body]
    assert not missing, f"docs/migrating.md, {seed}: no row names {missing}"
