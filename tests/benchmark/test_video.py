"""``make video``: a trained policy's episodes as tiled, labelled frames, written as WebM, MP4 and a poster."""

import numpy as np
import pytest

from benchmark.config import ConfigError, load_config
from benchmark.figures import video
from benchmark.run import run


def test_a_tile_puts_the_learners_view_beside_the_third_person_one_under_a_label():
    tile = np.asarray(
        video._tile(np.full((48, 48, 3), 200, np.uint8), np.zeros((video.VIEW,) * 2 + (3,), np.uint8), "env 0")
    )
    assert tile.shape == (video.VIEW, 2 * video.VIEW, 3)
    assert (tile[20:, : video.VIEW] == 200).all() and (tile[20:, video.VIEW :] == 0).all()  # scaled up, beside
    assert tile[:14].max() > 200 and np.median(tile[:14]) == 0  # light text on a black band


def test_a_trained_runs_video_has_its_frames_and_decodes_back(tmp_path):
    ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="videos need imageio-ffmpeg (pip install 'dva-bench[video]')")

    out = run(load_config("shac", "cartpole", ["num_envs=4", "horizon=8", "iterations=2", "eval_envs=1",
                                               "eval_max_steps=2", f"results_dir={tmp_path}", "run_name=r"]),
              progress=False)  # fmt: skip
    frames = video.record(out, num_envs=3, max_frames=8)  # until every env's episode ends (an untrained one: soon)
    assert 2 <= len(frames) <= 9 and frames[0].shape == (2 * video.VIEW, 2 * video.VIEW, 3)  # 3 tiles, 2 x 2
    assert not np.array_equal(frames[0], frames[-1])  # the policy moved the carts, the labels counted on
    assert frames[0][-video.VIEW :, video.VIEW :].max() == 0  # the fourth cell is empty
    paths = video.write(frames, out / "video")
    assert [p.name for p in paths] == ["policy.webm", "policy.mp4", "policy.png"] and all(
        p.stat().st_size for p in paths
    )
    for path in paths[:2]:  # both decode to every frame, at the frame rate
        assert ffmpeg.count_frames_and_secs(str(path)) == (
            len(frames),
            pytest.approx(len(frames) / video.FPS, abs=0.05),
        )


def test_filming_a_run_whose_checkpoint_no_longer_fits_changes_nothing_in_it(tmp_path):
    """A viewer never changes what it views: the checkpoint that does not load is reported, not renamed."""
    out = run(load_config("shac", "cartpole", ["num_envs=4", "horizon=8", "iterations=2", "eval_envs=1",
                                               "eval_max_steps=2", f"results_dir={tmp_path}", "run_name=r"]),
              progress=False)  # fmt: skip
    config = out / "config.yaml"
    config.write_text(config.read_text().replace("- 64\n- 64\n", "- 32\n- 32\n", 1))  # the actor's widths
    before = sorted((p.name, p.stat().st_size) for p in (out / "checkpoints").iterdir())
    with pytest.raises(ConfigError, match="no checkpoint that loads"):
        video.record(out, num_envs=1, max_frames=2)
    assert sorted((p.name, p.stat().st_size) for p in (out / "checkpoints").iterdir()) == before


def test_a_video_folder_that_links_elsewhere_is_refused_and_nothing_is_written_there(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="videos need imageio-ffmpeg (pip install 'dva-bench[video]')")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "video").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="symlink"):
        video.write([np.zeros((16, 16, 3), np.uint8)] * 2, tmp_path / "run" / "video")
    assert list(elsewhere.iterdir()) == []
