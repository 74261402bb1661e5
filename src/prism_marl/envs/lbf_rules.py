"""Level-Based Foraging with the rules of the ``lbforaging`` 2.0.0 package, in pure JAX.

The reference is ``lbforaging/foraging/environment.py`` (class ``ForagingEnv``) with the
kwargs its ``Foraging[-2s]-GxG-Pp-Ff[-coop]-v3`` registrations pass: agent levels 1..2, food
levels up to the sum of the three lowest agent levels, normalised rewards, vector observations
with agent levels, 50-step episodes. Every function here is jittable and vmappable; loops are
static and run over agents or foods only.

Shapes: N agents, F foods, G grid side, D = 3F + 3N observation features. Positions are
``(row, col)``; actions are lbforaging's ``Action`` values 0 NONE, 1 NORTH, 2 SOUTH, 3 WEST,
4 EAST, 5 LOAD.

Quirks of lbforaging that are reproduced by default and fixed by ``fix_quirks`` (see
docs/decisions/0010-lbf-quirks.md): in a blocked chain (A moves into B's cell while B is
blocked) A still moves, so two agents can share a cell; an agent within ``sight`` of the top or
left edge sees other agents in a window shifted inwards (up to ``2 * sight`` cells down/right).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

NUM_ACTIONS = 6
LOAD = 5
# Cells a food rules out for later foods (lbforaging's spawn_food): its 3x3 neighbourhood and
# the cells two steps away in a straight line, i.e. the diamond |d_row| + |d_col| <= 2.
FOOD_EXCLUSION_CELLS = 13
# Loops up to this many steps are unrolled: faster for the benchmark's few agents and foods,
# while longer ones stay rolled so the program's size does not grow with N.
SMALL = 16


@dataclasses.dataclass(frozen=True)
class LBFRules:
    """Static parameters of one lbforaging game (``ForagingEnv.__init__``'s arguments).

    Attributes:
        grid_size: G, the side of the square field (``field_size=(G, G)``).
        num_agents: N (``players``).
        num_food: F (``max_num_food``); every episode starts with exactly F foods.
        sight: how far an agent sees (``sight``; G means the whole grid).
        force_coop: every food gets the maximal level (``force_coop``).
        min_agent_level: lowest agent level (``min_player_level``).
        max_agent_level: highest agent level (``max_player_level``).
        penalty: subtracted from each agent of a failed loading group (``penalty``).
        episode_limit: steps before the episode ends (``max_episode_steps``).
        fix_quirks: block chains fully and use a symmetric sight window for agents.
    """

    grid_size: int
    num_agents: int
    num_food: int
    sight: int
    force_coop: bool
    min_agent_level: int = 1
    max_agent_level: int = 2
    penalty: float = 0.0
    episode_limit: int = 50
    fix_quirks: bool = False

    @property
    def obs_size(self) -> int:
        """D = 3F + 3N: (row, col, level) per food slot, then per agent slot."""
        return 3 * (self.num_food + self.num_agents)


class LBFState(NamedTuple):
    """One episode's state.

    Attributes:
        agent_pos: [N, 2] int32 (row, col); two agents may share a cell (chain quirk).
        agent_level: [N] int32.
        food_pos: [F, 2] int32.
        food_level: [F] int32, the level each food spawned with (kept after it is eaten).
        food_eaten: [F] bool.
        food_spawned: [] int32, the sum of all spawned food levels (reward normaliser).
        step_count: [] int32, steps taken in this episode.
    """

    agent_pos: jax.Array
    agent_level: jax.Array
    food_pos: jax.Array
    food_level: jax.Array
    food_eaten: jax.Array
    food_spawned: jax.Array
    step_count: jax.Array


def guaranteed_food_capacity(grid_size: int, num_agents: int) -> int:
    """Most foods lbforaging's spawn rule can always place, whatever the earlier draws.

    Foods go on interior cells ((G - 2)² of them) that hold no agent; each placed food rules out
    at most 13 cells (``FOOD_EXCLUSION_CELLS``). With F - 1 foods and N agents placed, at least
    (G - 2)² - 13 (F - 1) - N cells stay free, so F foods always fit while that is >= 1. The bound
    is conservative: lbforaging itself silently spawns fewer foods when random placement jams.
    """
    free = (grid_size - 2) ** 2 - num_agents - 1
    return 0 if free < 0 else 1 + free // FOOD_EXCLUSION_CELLS


def _distinct_cells(key: jax.Array, count: int, cells: int) -> jax.Array:
    """[count] distinct cell indices in [0, cells), each uniform over the cells left.

    Draw k picks r uniform in [0, cells - k) and takes the r-th cell not yet chosen. With the
    chosen cells sorted, s_0 < … < s_{k-1}, s_j - j cells are free below s_j, so that cell is
    x = r + #{j : s_j - j <= r}. A rolled loop keeps the program's size independent of count
    (an unrolled one took minutes to compile at 64 agents).
    """
    draws = jax.random.randint(key, (count,), 0, cells - jnp.arange(count), jnp.int32)
    # Unfilled slots hold a sentinel past every cell, so s_j - j > r never counts them.
    sentinel = jnp.int32(cells + count)
    rank = jnp.arange(count, dtype=jnp.int32)

    def pick(k: int, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        ordered, chosen = carry
        x = draws[k] + jnp.sum(ordered - rank <= draws[k]).astype(jnp.int32)
        ordered = jnp.sort(ordered.at[count - 1].set(x))  # the last slot is a sentinel
        return ordered, chosen.at[k].set(x)

    start = (jnp.full((count,), sentinel, jnp.int32), jnp.zeros((count,), jnp.int32))
    return jax.lax.fori_loop(0, count, pick, start, unroll=count <= SMALL)[1]


def _try_food(
    food: tuple[jax.Array, jax.Array, jax.Array], cell: jax.Array, inner: int, agent_pos: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Accept interior cell index ``cell`` as the next food unless an agent or a food blocks it.

    food: (rows [F], cols [F], placed []); the first ``placed`` slots hold accepted foods.
    """
    rows, cols, placed = food
    row, col = 1 + cell // inner, 1 + cell % inner
    on_agent = jnp.any((agent_pos[:, 0] == row) & (agent_pos[:, 1] == col))
    slots = jnp.arange(rows.shape[0])
    near = (slots < placed) & (jnp.abs(rows - row) + jnp.abs(cols - col) <= 2)
    accept = (placed < rows.shape[0]) & ~on_agent & ~jnp.any(near)
    here = accept & (slots == placed)
    return jnp.where(here, row, rows), jnp.where(here, col, cols), placed + accept.astype(jnp.int32)


# key, food rows [F], food cols [F], foods placed, chunks drawn
_FoodCarry = tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]


def _spawn_food_cells(
    rules: LBFRules, key: jax.Array, agent_pos: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Food rows and columns, [F] each, by lbforaging's spawn_food rejection sampling.

    Candidates are uniform interior cells, taken in turn; one is accepted unless it holds an
    agent or lies within Manhattan distance 2 of an accepted food (lbforaging's 3x3 neighbourhood
    plus the cells two steps away in a straight line, together exactly that diamond). A
    while_loop draws candidates in chunks until every food is placed, so under vmap it runs as
    many chunks as the unluckiest environment of the batch needs, usually one or two.
    """
    f, inner = rules.num_food, rules.grid_size - 2
    chunk = 2 * f + 2

    def unplaced(carry: _FoodCarry) -> jax.Array:
        _, _, _, placed, chunks = carry
        # The chunk cap only guards against a hang; the capacity check makes it unreachable.
        return (placed < f) & (chunks < 10_000)

    def draw(carry: _FoodCarry) -> _FoodCarry:
        key, rows, cols, placed, chunks = carry
        key, sub = jax.random.split(key)
        cand = jax.random.randint(sub, (chunk,), 0, inner * inner, jnp.int32)
        rows, cols, placed = jax.lax.fori_loop(
            0,
            chunk,
            lambda c, food: _try_food(food, cand[c], inner, agent_pos),
            (rows, cols, placed),
            unroll=chunk <= SMALL,
        )
        return key, rows, cols, placed, chunks + 1

    empty = jnp.zeros((f,), jnp.int32)
    start: _FoodCarry = (key, empty, empty, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    _, rows, cols, _, _ = jax.lax.while_loop(unplaced, draw, start)
    return rows, cols


def spawn(rules: LBFRules, key: jax.Array) -> LBFState:
    """A start state drawn as ``ForagingEnv.reset`` draws it (spawn_players, then spawn_food).

    Agents: levels uniform in [min, max]; positions uniform over cells free of earlier agents.
    Foods: uniform interior cells (rows and columns 1..G-2) by rejection (``_spawn_food_cells``).
    Food levels: the maximum L is the sum of the three lowest agent levels; all L under
    force_coop, otherwise uniform in [1, L].

    One deviation: lbforaging's spawn_players also avoids the cells where later agents stood at
    the end of the previous episode (their stale positions); a stateless reset cannot see them.
    """
    g, n, f = rules.grid_size, rules.num_agents, rules.num_food
    k_agent, k_level, k_food, k_food_level = jax.random.split(key, 4)
    cells = _distinct_cells(k_agent, n, g * g)
    agent_pos = jnp.stack([cells // g, cells % g], axis=-1)
    agent_level = jax.random.randint(
        k_level, (n,), rules.min_agent_level, rules.max_agent_level + 1, jnp.int32
    )
    max_food_level = jnp.sum(jnp.sort(agent_level)[:3])
    if rules.force_coop:
        food_level = jnp.full((f,), max_food_level, jnp.int32)
    else:
        food_level = jax.random.randint(k_food_level, (f,), 1, max_food_level + 1, jnp.int32)
    rows, cols = _spawn_food_cells(rules, k_food, agent_pos)
    return LBFState(
        agent_pos=agent_pos,
        agent_level=agent_level,
        food_pos=jnp.stack([rows, cols], axis=-1),
        food_level=food_level,
        food_eaten=jnp.zeros((f,), bool),
        food_spawned=jnp.sum(food_level),
        step_count=jnp.zeros((), jnp.int32),
    )


def _moves(actions: jax.Array) -> jax.Array:
    """[..., 2] (d_row, d_col) of each action: NORTH -row, SOUTH +row, WEST -col, EAST +col."""
    d_row = (actions == 2).astype(jnp.int32) - (actions == 1).astype(jnp.int32)
    d_col = (actions == 4).astype(jnp.int32) - (actions == 3).astype(jnp.int32)
    return jnp.stack([d_row, d_col], axis=-1)


def _adjacent_food(state: LBFState, pos: jax.Array) -> jax.Array:
    """[N, F] bool: uneaten food f is a 4-neighbour of agent position n.

    lbforaging's spacing rule makes this at most one food per agent (adjacent_food_location's
    search order therefore never matters).
    """
    dist = jnp.sum(jnp.abs(pos[:, None, :] - state.food_pos[None, :, :]), axis=-1)
    return (dist == 1) & ~state.food_eaten[None, :]


def valid_actions(rules: LBFRules, state: LBFState) -> jax.Array:
    """[N, 6] bool action mask, lbforaging's ``_is_valid_action``.

    NONE always; a move when its target is inside the grid and holds no uneaten food (cells of
    other agents are allowed); LOAD when an uneaten food is a 4-neighbour.
    """
    dirs = _moves(jnp.arange(1, 5))  # [4, 2]
    target = state.agent_pos[:, None, :] + dirs[None]  # [N, 4, 2]
    inside = jnp.all((target >= 0) & (target < rules.grid_size), axis=-1)
    hits = jnp.all(target[:, :, None, :] == state.food_pos[None, None], axis=-1)  # [N, 4, F]
    on_food = jnp.any(hits & ~state.food_eaten[None, None, :], axis=-1)
    load = jnp.any(_adjacent_food(state, state.agent_pos), axis=-1)
    none = jnp.ones((rules.num_agents, 1), bool)
    return jnp.concatenate([none, inside & ~on_food, load[:, None]], axis=-1)


def _resolve_moves(rules: LBFRules, pos: jax.Array, target: jax.Array) -> jax.Array:
    """[N] bool: which agents reach their target (lbforaging's ``collisions`` dictionary).

    Every agent claims a cell, its own when it stays or loads; an agent moves iff no other agent
    claims the same cell. Followers into vacated cells and swaps therefore succeed. With
    ``fix_quirks`` an agent whose target is the cell of an agent that ends up not moving is
    blocked too, repeated along chains, so no two agents ever share a cell.
    """
    claims = jnp.all(target[:, None, :] == target[None, :, :], axis=-1)  # [N, N]
    moves = jnp.sum(claims, axis=-1) == 1
    if rules.fix_quirks:
        onto = jnp.all(target[:, None, :] == pos[None, :, :], axis=-1)  # i targets j's cell
        onto = onto & ~jnp.eye(rules.num_agents, dtype=bool)
        moves = jax.lax.fori_loop(
            0, rules.num_agents - 1, lambda _, m: m & ~jnp.any(onto & ~m[None, :], axis=-1), moves
        )
    return moves


def transition(rules: LBFRules, state: LBFState, actions: jax.Array) -> tuple[LBFState, jax.Array]:
    """One ``ForagingEnv.step``: the next state and the [N] float32 rewards.

    Invalid actions become NONE; moves are resolved by ``_resolve_moves``; then every food with
    adjacent loading agents is loaded by all of them together (they form one group per food,
    lbforaging's loading_players loop): it is eaten when their level sum reaches its level, and
    agent i of the group is rewarded level_i · food_level / (group_level · food_spawned), so a
    whole episode returns at most 1 to the team; a failed group's agents each get -penalty.
    """
    mask = valid_actions(rules, state)
    chosen = jnp.take_along_axis(mask, actions[:, None].astype(jnp.int32), axis=-1)[:, 0]
    actions = jnp.where(chosen, actions, 0)
    target = state.agent_pos + _moves(actions)
    moved = _resolve_moves(rules, state.agent_pos, target)
    pos = jnp.where(moved[:, None], target, state.agent_pos)

    group = _adjacent_food(state, pos) & (actions == LOAD)[:, None]  # [N, F]
    level = state.agent_level
    group_level = jnp.sum(jnp.where(group, level[:, None], 0), axis=0)  # [F]
    eaten = jnp.any(group, axis=0) & (group_level >= state.food_level)
    share = (level[:, None] * state.food_level[None, :]).astype(jnp.float32) / (
        (group_level * state.food_spawned)[None, :].astype(jnp.float32)
    )
    per_food = jnp.where(eaten[None, :], share, -jnp.float32(rules.penalty))
    reward = jnp.sum(jnp.where(group, per_food, 0.0), axis=-1)
    next_state = state._replace(
        agent_pos=pos,
        food_eaten=state.food_eaten | eaten,
        step_count=state.step_count + 1,
    )
    return next_state, reward


def episode_flags(rules: LBFRules, state: LBFState) -> tuple[jax.Array, jax.Array]:
    """(terminated, truncated): every food eaten; else the step limit reached."""
    terminated = jnp.all(state.food_eaten)
    truncated = (state.step_count >= rules.episode_limit) & ~terminated
    return terminated, truncated


def _earlier_seen(seen: jax.Array) -> jax.Array:
    """[M, K] int32: how many entries before each (in K's order) are seen, ``seen`` [M, K].

    A triangular product for a few entries (fused elementwise code, the fastest form at the
    benchmark's sizes), an exclusive running sum beyond (O(K) per row instead of O(K²)).
    """
    seen = seen.astype(jnp.int32)
    k = seen.shape[-1]
    if k <= SMALL:
        earlier = jnp.arange(k)[:, None] < jnp.arange(k)[None, :]  # [k', k]: k' before k
        return jnp.sum(seen[:, :, None] * earlier[None], axis=1)
    return jnp.cumsum(seen, axis=-1) - seen


def _pack(visible: jax.Array, slot: jax.Array, feats: jax.Array, slots: int) -> jax.Array:
    """[M, slots, 3]: visible entries' features placed at their slots, (-1, -1, 0) elsewhere.

    visible, slot: [M, K]; feats: [M, K, 3]. A one-hot sum for a few slots (tiny operands:
    fused elementwise code beats a scatter on CPU); beyond, hidden entries are scattered to an
    extra slot that is dropped, O(M·K) instead of the one-hot sum's O(M·K·slots).
    """
    padding = jnp.array([-1.0, -1.0, 0.0], feats.dtype)
    if slots <= SMALL:
        onehot = visible[..., None] & (slot[..., None] == jnp.arange(slots))  # [M, K, slots]
        packed = jnp.sum(jnp.where(onehot[..., None], feats[:, :, None, :], 0.0), axis=1)
        empty = ~jnp.any(onehot, axis=1)  # [M, slots]
        return packed + jnp.where(empty[..., None], padding, 0.0)
    rows = jnp.arange(visible.shape[0])[:, None]
    target = jnp.where(visible, slot, slots)
    empty_slots = jnp.broadcast_to(padding, (visible.shape[0], slots + 1, 3))
    return empty_slots.at[rows, target].set(feats)[:, :slots]


def observe(rules: LBFRules, state: LBFState) -> jax.Array:
    """[N, D] float32 vector observations, lbforaging's ``_make_obs`` + ``_make_gym_obs``.

    Coordinates are relative to the corner of agent i's view, origin_i = max(pos_i - sight, 0)
    (absolute when sight covers the grid). Foods seen: uneaten, |Δrow|, |Δcol| <= sight; packed
    in row-major order of position, then (-1, -1, 0) padding. Agents: agent i first, then the
    others it sees in index order, then padding; an agent is seen when its coordinates relative
    to origin_i lie in [0, 2 sight] (the widened window near the top/left edge) or, with
    ``fix_quirks``, when |Δrow|, |Δcol| <= sight.
    """
    n, f, g, s = rules.num_agents, rules.num_food, rules.grid_size, rules.sight
    pos = state.agent_pos
    origin = jnp.maximum(pos - s, 0)  # [N, 2]

    food_delta = state.food_pos[None, :, :] - pos[:, None, :]  # [N, F, 2]
    food_seen = jnp.all(jnp.abs(food_delta) <= s, axis=-1) & ~state.food_eaten[None, :]
    # A seen food's slot counts the seen foods before it in row-major order of position
    # (foods never share a cell): counted over the foods sorted by position.
    by_position = jnp.argsort(state.food_pos[:, 0] * g + state.food_pos[:, 1])  # [F]
    slot_sorted = _earlier_seen(food_seen[:, by_position])
    food_slot = jnp.zeros_like(slot_sorted).at[:, by_position].set(slot_sorted)  # [N, F]
    food_feats = jnp.concatenate(
        [
            state.food_pos[None] - origin[:, None, :],
            jnp.broadcast_to(state.food_level[None, :, None], (n, f, 1)),
        ],
        axis=-1,
    ).astype(jnp.float32)
    foods = _pack(food_seen, food_slot, food_feats, f)

    rel = pos[None, :, :] - origin[:, None, :]  # [i, j, 2]
    if rules.fix_quirks:
        agent_seen = jnp.all(jnp.abs(pos[None, :, :] - pos[:, None, :]) <= s, axis=-1)
    else:
        agent_seen = jnp.all((rel >= 0) & (rel <= 2 * s), axis=-1)
    eye = jnp.eye(n, dtype=bool)
    agent_slot = jnp.where(eye, 0, 1 + _earlier_seen(agent_seen & ~eye))
    agent_feats = jnp.concatenate(
        [rel, jnp.broadcast_to(state.agent_level[None, :, None], (n, n, 1))], axis=-1
    ).astype(jnp.float32)
    agents = _pack(agent_seen | eye, agent_slot, agent_feats, n)
    return jnp.concatenate([foods.reshape(n, 3 * f), agents.reshape(n, 3 * n)], axis=-1)
