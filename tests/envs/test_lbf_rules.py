"""lbforaging rules in JAX against the lbforaging 2.0.0 package itself.

The reference episodes are played in lbforaging (random actions among its valid ones); our
rules replay the same start states and actions in one jitted vmap-over-episodes scan, and every
step's positions, foods, rewards, episode ends, observations and action masks must agree.
"""

import functools

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lbforaging.foraging.environment import ForagingEnv
from scipy import stats

from prism_marl.bench.lbf import random_policy_returns
from prism_marl.envs import lbf_rules
from prism_marl.envs.lbf import MAX_AGENT_LEVEL, LBFEnv, LBFTask
from prism_marl.envs.lbf_rules import LBFRules, LBFState
from prism_marl.errors import ConfigError

LIMIT = 50
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1], [0, 0]])
REGISTERED = {
    "8x8-2p-2f-coop": "Foraging-8x8-2p-2f-coop-v3",
    "2s-8x8-2p-2f-coop": "Foraging-2s-8x8-2p-2f-coop-v3",
    "10x10-3p-3f": "Foraging-10x10-3p-3f-v3",
}
# (task, penalty, episodes): the registered tasks, plus crowded grids where agents meet often
# enough for every collision class, one of them with a penalty and the widened-sight quirk.
EQUIVALENCE = [
    ("8x8-2p-2f-coop", 0.0, 150),
    ("2s-8x8-2p-2f-coop", 0.0, 150),
    ("10x10-3p-3f", 0.0, 150),
    ("6x6-4p-1f", 0.0, 100),
    ("2s-7x7-5p-2f", 0.1, 100),
    # Many agents and foods, partly out of sight: the observation's slot packing at scale.
    ("3s-20x20-24p-18f", 0.0, 6),
]


def reference_kwargs(task_name, penalty=0.0):
    """ForagingEnv's kwargs as lbforaging's own registrations pass them."""
    task = LBFTask.parse(task_name)
    return {
        "players": task.num_agents,
        "min_player_level": 1,
        "max_player_level": MAX_AGENT_LEVEL,
        "field_size": (task.grid_size, task.grid_size),
        "min_food_level": 1,
        "max_food_level": None,
        "max_num_food": task.num_food,
        "sight": task.sight,
        "max_episode_steps": LIMIT,
        "force_coop": task.force_coop,
        "grid_observation": False,
        "penalty": penalty,
    }


def our_rules(task_name, penalty=0.0, fix_quirks=False):
    task = LBFTask.parse(task_name)
    return LBFRules(
        grid_size=task.grid_size,
        num_agents=task.num_agents,
        num_food=task.num_food,
        sight=task.sight,
        force_coop=task.force_coop,
        penalty=penalty,
        episode_limit=LIMIT,
        fix_quirks=fix_quirks,
    )


def snapshot(env):
    """Agent positions [N, 2], agent levels [N] and the food field [G, G] of an lbforaging env."""
    pos = np.array([p.position for p in env.players], np.int32)
    levels = np.array([p.level for p in env.players], np.int32)
    return pos, levels, env.field.copy()


def valid_mask(env):
    valid = [{a.value for a in env._valid_actions[p]} for p in env.players]
    return np.array([[a in v for a in range(6)] for v in valid])


def to_state(env, num_food):
    """Our LBFState of lbforaging's current position (foods in row-major order)."""
    pos, levels, field = snapshot(env)
    rows, cols = np.nonzero(field)
    assert len(rows) == num_food, "lbforaging spawned fewer foods"
    return LBFState(
        agent_pos=pos,
        agent_level=levels,
        food_pos=np.stack([rows, cols], -1).astype(np.int32),
        food_level=field[rows, cols].astype(np.int32),
        food_eaten=np.zeros(num_food, bool),
        food_spawned=np.int32(env._food_spawned),
        step_count=np.int32(env.current_step),
    )


def play_reference(task_name, penalty, episodes, seed):
    """lbforaging episodes with uniformly random valid actions, every step recorded."""
    env = ForagingEnv(**reference_kwargs(task_name, penalty))
    num_food = LBFTask.parse(task_name).num_food
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    record = {k: [] for k in ("start", "obs0", "mask0", "actions", "length", "steps")}
    for episode in range(episodes):
        if episode:
            env.reset()
        record["start"].append(to_state(env, num_food))
        record["obs0"].append(np.stack(env._make_gym_obs()))
        record["mask0"].append(valid_mask(env))
        actions = np.zeros((LIMIT, len(env.players)), np.int32)
        steps = []
        for t in range(LIMIT):
            before = snapshot(env)[0]
            actions[t] = [rng.choice(np.flatnonzero(m)) for m in valid_mask(env)]
            obs, rewards, done, _, _ = env.step(list(actions[t]))
            pos, _, field = snapshot(env)
            rewards = np.array(rewards)
            steps.append((before, pos, field, rewards, done, np.stack(obs), valid_mask(env)))
            if done:
                break
        record["actions"].append(actions)
        record["length"].append(len(steps))
        record["steps"].append(steps)
    return record


@functools.cache
def replay_fn(rules):
    """jit(vmap over episodes) of a LIMIT-step scan of our rules from given start states."""

    def replay(state, actions):
        def body(state, action):
            state, reward = lbf_rules.transition(rules, state, action)
            terminated, truncated = lbf_rules.episode_flags(rules, state)
            out = (
                state.agent_pos,
                field_of(rules, state),
                reward,
                terminated | truncated,
                lbf_rules.observe(rules, state),
                lbf_rules.valid_actions(rules, state),
            )
            return state, out

        first = (lbf_rules.observe(rules, state), lbf_rules.valid_actions(rules, state))
        return first, jax.lax.scan(body, state, actions)[1]

    return jax.jit(jax.vmap(replay))


def field_of(rules, state):
    """[G, G] food levels of uneaten foods, lbforaging's ``field``."""
    levels = jnp.where(state.food_eaten, 0, state.food_level)
    field = jnp.zeros((rules.grid_size, rules.grid_size), jnp.int32)
    return field.at[state.food_pos[:, 0], state.food_pos[:, 1]].add(levels)


def collision_classes(before, actions, after):
    """Counts of the movement cases one step exercises, from lbforaging's own outcome."""
    target = before + MOVES[actions]
    moving = (actions >= 1) & (actions <= 4)
    moved = np.all(after == target, -1) & moving
    counts = dict.fromkeys(("same_target", "follow", "swap", "blocked_chain"), 0)
    n = len(actions)
    for i in range(n):
        for j in range(n):
            if i == j or not moving[i]:
                continue
            if moving[j] and np.all(target[i] == target[j]):
                counts["same_target"] += 1
            if not np.all(target[i] == before[j]) or not moving[j]:
                continue
            if np.all(target[j] == before[i]):
                counts["swap"] += 1
            elif moved[i] and moved[j]:
                counts["follow"] += 1
            elif moved[i] and not moved[j]:
                counts["blocked_chain"] += 1
    return counts


def test_registered_kwargs_are_lbforagings():
    for task, env_id in REGISTERED.items():
        assert gymnasium.spec(env_id).kwargs == reference_kwargs(task)


def widened_sight(pos, sight):
    """Pairs (i, j) where i sees j only through lbforaging's edge-widened window."""
    rel = pos[None, :, :] - np.maximum(pos - sight, 0)[:, None, :]
    seen = np.all((rel >= 0) & (rel <= 2 * sight), -1)
    far = np.abs(pos[None, :, :] - pos[:, None, :]).max(-1) > sight
    return int(np.sum(seen & far))


def test_step_for_step_equivalence_with_lbforaging():
    totals = dict.fromkeys(("same_target", "follow", "swap", "blocked_chain", "wide_sight"), 0)
    ends = {"terminated": 0, "truncated": 0}
    for index, (task, penalty, episodes) in enumerate(EQUIVALENCE):
        ref = play_reference(task, penalty, episodes, seed=index)
        rules = our_rules(task, penalty)
        start = jax.tree_util.tree_map(lambda *x: np.stack(x), *ref["start"])
        (obs0, mask0), outs = replay_fn(rules)(start, np.stack(ref["actions"]))
        np.testing.assert_array_equal(np.asarray(obs0), np.stack(ref["obs0"]))
        np.testing.assert_array_equal(np.asarray(mask0), np.stack(ref["mask0"]))
        pos, field, reward, done, obs, mask = map(np.asarray, outs)
        for e, steps in enumerate(ref["steps"]):
            for t, (before, ref_pos, ref_field, ref_rew, ref_done, ref_obs, ref_mask) in enumerate(
                steps
            ):
                where = f"{task} episode {e} step {t}"
                np.testing.assert_array_equal(pos[e, t], ref_pos, err_msg=where)
                np.testing.assert_array_equal(field[e, t], ref_field, err_msg=where)
                np.testing.assert_allclose(reward[e, t], ref_rew, 1e-6, 1e-7, err_msg=where)
                assert bool(done[e, t]) == bool(ref_done), where
                np.testing.assert_array_equal(obs[e, t], ref_obs, err_msg=where)
                np.testing.assert_array_equal(mask[e, t], ref_mask, err_msg=where)
                for name, count in collision_classes(before, ref["actions"][e][t], ref_pos).items():
                    totals[name] += count
                totals["wide_sight"] += widened_sight(ref_pos, rules.sight)
            ends["terminated" if ref_field.sum() == 0 else "truncated"] += 1
            assert len(steps) == LIMIT or ref_field.sum() == 0
    print("collision classes:", totals, "episode ends:", ends)
    assert all(count > 0 for count in totals.values()), totals
    assert ends["terminated"] > 0 and ends["truncated"] > 0


def test_penalty_and_stacking_occur_in_the_crowded_reference():
    ref = play_reference("2s-7x7-5p-2f", 0.1, 100, seed=4)
    rewards = np.concatenate([s[3] for steps in ref["steps"] for s in steps])
    assert np.any(np.isclose(rewards, -0.1)), "a failed load was penalised"
    stacked = [len({tuple(p) for p in s[1]}) < len(s[1]) for steps in ref["steps"] for s in steps]
    assert any(stacked), "the chain quirk put two agents on one cell"


def start_statistics(agent_pos, agent_level, food_pos, food_level):
    """Histograms of start-state features from [M, N, 2], [M, N], [M, F, 2], [M, F] arrays."""
    g = 8
    diff = np.abs(food_pos[:, 0] - food_pos[:, 1])  # first two foods
    near = np.abs(agent_pos[:, :, None, :] - food_pos[:, None, :, :]).sum(-1).min(-1)
    return {
        "agent_row": np.bincount(agent_pos[..., 0].ravel(), minlength=g),
        "agent_col": np.bincount(agent_pos[..., 1].ravel(), minlength=g),
        "agent_level": np.bincount(agent_level.ravel(), minlength=3),
        "food_row": np.bincount(food_pos[..., 0].ravel(), minlength=g),
        "food_col": np.bincount(food_pos[..., 1].ravel(), minlength=g),
        "food_level": np.bincount(food_level.ravel(), minlength=7),
        "food_gap": np.bincount(np.minimum(diff.sum(-1), 8), minlength=9),
        "agent_food_gap": np.bincount(np.minimum(near.ravel(), 8), minlength=9),
    }


def mismatched(ours, theirs, alpha=1e-3):
    """Names of statistics whose two samples differ (chi-square test of homogeneity)."""
    bad = []
    for name in ours:
        table = np.stack([ours[name], theirs[name]])
        table = table[:, table.sum(0) > 0]
        if table.shape[1] > 1 and stats.chi2_contingency(table)[1] < alpha:
            bad.append(name)
    return bad


@functools.cache
def reference_starts(count=3000):
    env = ForagingEnv(**reference_kwargs("8x8-3p-2f"))
    env.reset(seed=123)
    states = []
    for _ in range(count):
        env.reset()
        states.append(to_state(env, 2))
    s = jax.tree_util.tree_map(lambda *x: np.stack(x), *states)
    return start_statistics(s.agent_pos, s.agent_level, s.food_pos, s.food_level)


def test_start_states_are_distributed_as_lbforagings():
    rules = our_rules("8x8-3p-2f")
    keys = jax.random.split(jax.random.PRNGKey(7), 3000)
    s = jax.tree_util.tree_map(
        np.asarray, jax.jit(jax.vmap(lambda k: lbf_rules.spawn(rules, k)))(keys)
    )
    ours = start_statistics(s.agent_pos, s.agent_level, s.food_pos, s.food_level)
    assert mismatched(ours, reference_starts()) == []


def test_start_state_check_detects_a_different_generator():
    env = LBFEnv("8x8-3p-2f", rules="jumanji", generator="jumanji")
    keys = jax.random.split(jax.random.PRNGKey(7), 3000)
    s = jax.jit(jax.vmap(env._backend._env._generator))(keys)
    agents, foods = s.agents, s.food_items
    theirs = start_statistics(
        np.asarray(agents.position),
        np.asarray(agents.level),
        np.asarray(foods.position),
        np.asarray(foods.level),
    )
    assert "agent_row" in mismatched(theirs, reference_starts())


def test_fixed_quirks_block_chains_and_narrow_sight():
    def state(pos):
        return LBFState(
            agent_pos=jnp.array(pos, jnp.int32),
            agent_level=jnp.ones(len(pos), jnp.int32),
            food_pos=jnp.array([[6, 6]], jnp.int32),
            food_level=jnp.array([1], jnp.int32),
            food_eaten=jnp.array([False]),
            food_spawned=jnp.array(1, jnp.int32),
            step_count=jnp.array(0, jnp.int32),
        )

    chain = state([[2, 1], [2, 2], [2, 3]])
    east = jnp.array([4, 4, 0])
    quirky, fixed = our_rules("2s-8x8-3p-1f"), our_rules("2s-8x8-3p-1f", fix_quirks=True)
    assert lbf_rules.transition(quirky, chain, east)[0].agent_pos.tolist() == [
        [2, 2],
        [2, 2],
        [2, 3],
    ]
    blocked = lbf_rules.transition(fixed, chain, east)[0].agent_pos
    assert blocked.tolist() == chain.agent_pos.tolist()
    swap = state([[2, 1], [2, 2], [5, 5]])
    swapped = lbf_rules.transition(fixed, swap, jnp.array([4, 3, 0]))[0].agent_pos
    assert swapped.tolist() == [[2, 2], [2, 1], [5, 5]]

    corner = state([[0, 0], [4, 4], [2, 2]])
    seen = lambda rules: lbf_rules.observe(rules, corner)[0, 3:].reshape(3, 3)  # noqa: E731
    assert seen(quirky).tolist() == [[0, 0, 1], [4, 4, 1], [2, 2, 1]]
    assert seen(fixed).tolist() == [[0, 0, 1], [2, 2, 1], [-1, -1, 0]]


@pytest.mark.parametrize("task", ["6x6-2p-2f", "8x8-2p-3f", "3s-12x12-5p-4f-coop"])
def test_foods_at_capacity_are_always_placed_with_lbforagings_spacing(task):
    rules = our_rules(task)
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    s = jax.jit(jax.vmap(lambda k: lbf_rules.spawn(rules, k)))(keys)
    food, agents = np.asarray(s.food_pos), np.asarray(s.agent_pos)
    g = rules.grid_size
    assert food.min() >= 1 and food.max() <= g - 2
    d = np.abs(food[:, :, None, :] - food[:, None, :, :])
    far = (d.max(-1) > 1) & ~((d.min(-1) == 0) & (d.max(-1) <= 2))
    assert np.all(far | np.eye(rules.num_food, dtype=bool))
    assert not np.any(np.all(agents[:, :, None, :] == food[:, None, :, :], -1))
    assert all(len({tuple(p) for p in a}) == rules.num_agents for a in agents)


@pytest.mark.parametrize(("task", "capacity"), [("5x5-2p-2f", 1), ("8x8-2p-4f", 3)])
def test_tasks_beyond_lbforagings_capacity_fail_at_configuration(task, capacity):
    with pytest.raises(ConfigError, match=f"at most {capacity} foods"):
        LBFTask.parse(task)


# lbforaging's own random-policy team returns (mean, standard error), measured with
# `python -m prism_marl.bench.lbf returns --task T --reference-episodes R` (docs/lbf.md).
REFERENCE_RETURNS = {"8x8-2p-2f-coop": (0.0037, 0.0003), "10x10-3p-3f": (0.0971, 0.0024)}


@pytest.mark.parametrize(("task", "episodes"), [("8x8-2p-2f-coop", 20000), ("10x10-3p-3f", 8000)])
def test_random_policy_returns_match_lbforagings(task, episodes):
    returns = random_policy_returns(task, episodes, seed=1)
    mean, sem = returns.mean(), returns.std(ddof=1) / np.sqrt(episodes)
    ref_mean, ref_sem = REFERENCE_RETURNS[task]
    print(f"{task}: ours {mean:.4f} ± {sem:.4f}, lbforaging {ref_mean} ± {ref_sem}")
    assert abs(mean - ref_mean) < 4 * np.hypot(sem, ref_sem)


def test_distinct_cells_takes_the_drawn_rank_among_the_free_cells():
    count, cells = 40, 50
    key = jax.random.PRNGKey(3)
    chosen = np.asarray(lbf_rules._distinct_cells(key, count, cells))
    draws = np.asarray(jax.random.randint(key, (count,), 0, cells - jnp.arange(count), jnp.int32))
    free = list(range(cells))
    expected = [free.pop(int(r)) for r in draws]  # the r-th cell not yet chosen
    np.testing.assert_array_equal(chosen, expected)


def test_many_agent_start_states_follow_the_spawn_rules():
    rules = our_rules("40x40-64p-64f")
    keys = jax.random.split(jax.random.PRNGKey(5), 4)
    starts = jax.jit(jax.vmap(lambda k: lbf_rules.spawn(rules, k)))(keys)
    positions = np.asarray(starts.agent_pos), np.asarray(starts.food_pos)
    for agents, foods in zip(*positions, strict=True):
        assert len({tuple(p) for p in agents}) == 64, "agents start on distinct cells"
        assert foods.min() >= 1 and foods.max() <= 38, "foods start on interior cells"
        assert not {tuple(p) for p in foods} & {tuple(p) for p in agents}
        gaps = np.abs(foods[:, None] - foods[None]).sum(-1) + 99 * np.eye(64, dtype=int)
        assert gaps.min() > 2, "no food within Manhattan distance 2 of another"
