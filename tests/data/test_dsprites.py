import numpy as np

from components.data import dsprites


def test_same_seed_same_images_and_factors():
    a = dsprites.generate(200, 32, seed=3)
    b = dsprites.generate(200, 32, seed=3)
    c = dsprites.generate(200, 32, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert all(np.array_equal(a[2][k], b[2][k]) for k in dsprites.FACTOR_SIZES)
    assert not np.array_equal(a[0], c[0])


def test_images_are_binary_single_channel_with_one_sprite():
    images, labels, _ = dsprites.generate(300, 32, seed=0)
    assert images.shape == (300, 1, 32, 32) and images.dtype == np.uint8
    assert set(np.unique(images)) <= {0, 255}
    on = (images > 0).reshape(300, -1).sum(1)
    assert on.min() > 4, "every image shows a sprite"
    assert on.max() < 0.5 * 32 * 32, "sprites stay small against the background"


def test_every_factor_value_is_covered_and_labels_are_shapes():
    images, labels, factors = dsprites.generate(4000, 32, seed=1)
    for name, size in dsprites.FACTOR_SIZES.items():
        assert set(np.unique(factors[name])) == set(range(size)), name
    assert np.array_equal(labels, factors["shape"])


def test_factors_change_the_picture_as_named():
    base = {k: np.array([0]) for k in dsprites.FACTOR_SIZES}
    base.update(scale=np.array([5]), pos_x=np.array([0]), pos_y=np.array([16]))
    small = dict(base, scale=np.array([0]))
    right = dict(base, pos_x=np.array([31]))
    img, img_small, img_right = (dsprites.render(f, 32)[0, 0] > 0 for f in (base, small, right))
    assert img_small.sum() < img.sum()
    cols = np.nonzero(img.any(0))[0].mean(), np.nonzero(img_right.any(0))[0].mean()
    assert cols[1] > cols[0] + 5, "pos_x moves the sprite to the right"
    shapes = [dsprites.render(dict(base, shape=np.array([s])), 32)[0, 0] for s in range(3)]
    assert len({s.tobytes() for s in shapes}) == 3


def test_renders_at_64():
    images, _, _ = dsprites.generate(10, 64, seed=0)
    assert images.shape == (10, 1, 64, 64)


def test_splits_never_share_a_grid_cell():
    _, _, factors = dsprites.generate(5000, 32, seed=2)
    cells = np.ravel_multi_index(tuple(factors[k] for k in dsprites.FACTOR_SIZES), tuple(dsprites.FACTOR_SIZES.values()))
    assert len(np.unique(cells)) == 5000


def test_no_placement_appears_with_two_shapes():
    """CycleGAN's shape domains are unpaired: no (scale, orientation, pos_x, pos_y) is drawn twice."""
    _, _, factors = dsprites.generate(5000, 32, seed=3)
    placement = [k for k in dsprites.FACTOR_SIZES if k != "shape"]
    cells = np.ravel_multi_index(tuple(factors[k] for k in placement), tuple(dsprites.FACTOR_SIZES[k] for k in placement))
    assert len(np.unique(cells)) == 5000
    assert set(np.unique(factors["shape"])) == {0, 1, 2}


def test_orientation_steps_limits_the_turn_and_leaves_the_full_turn_as_it_was():
    """data.orientation_steps: the first N of the 40 orientations; 40 draws exactly the default images."""
    import pytest

    from components.errors import ConfigError

    full, default = dsprites.generate(300, 32, seed=5, orientation_steps=40), dsprites.generate(300, 32, seed=5)
    assert np.array_equal(full[0], default[0]) and all(np.array_equal(full[2][k], default[2][k]) for k in full[2])
    _, _, quarter = dsprites.generate(2000, 32, seed=5, orientation_steps=10)
    assert set(np.unique(quarter["orientation"])) == set(range(10))
    images, _, upright = dsprites.generate(300, 32, seed=5, orientation_steps=1)
    assert set(np.unique(upright["orientation"])) == {0}
    squares = images[upright["shape"] == 0, 0] > 0
    fill = [sq.sum() / (sq.any(1).sum() * sq.any(0).sum()) for sq in squares]  # of the bounding box
    assert min(fill) > 0.85, "upright squares are axis-aligned boxes (a square at 45 degrees fills half its box)"
    with pytest.raises(ConfigError, match="at most 6144"):  # 6 scales x 1 orientation x 32 x 32 placements
        dsprites.generate(8000, 32, seed=5, orientation_steps=1)
    with pytest.raises(ConfigError, match="data.orientation_steps: 0"):
        dsprites.generate(10, 32, seed=5, orientation_steps=0)
