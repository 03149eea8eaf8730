"""geomgen.render.preview: render_prediction and render_samples (what `geomgen predict --render`
and `geomgen sample` draw)."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import ico_sphere
from geomgen.render import opencv_to_y_up, render_prediction, render_samples
from geomgen.structures import Meshes


def _blue(img: torch.Tensor) -> torch.Tensor:
    """(H, W) mask of the mesh (light blue on white)."""
    return (img[2] - img[0]) > 0.1


def test_render_prediction_object_and_camera_frames():
    sphere = ico_sphere(2)
    v, f = sphere.verts_list()[0] * 0.3, sphere.faces_list()[0]
    img = render_prediction(v, f, "object", 48, fit=False)
    assert img.shape == (3, 48, 48) and img.dtype == torch.float32
    assert 0 <= float(img.min()) and float(img.max()) <= 1
    mask = _blue(img)
    assert 0.05 < float(mask.float().mean()) < 0.6 and not bool(mask[0].any())  # white border
    # fit=True scales the mesh to fill the view: a bigger silhouette
    assert _blue(render_prediction(v, f, "object", 48)).sum() > mask.sum()
    # a camera-frame mesh is turned Y-up first: the same picture as its object-frame twin
    top = v.clone()
    top[v[:, 1] > 0.1] += torch.tensor([0.0, 0.2, 0.0])  # not symmetric under the flip
    assert not torch.equal(render_prediction(top, f, "camera", 48, fit=False),
                           render_prediction(top, f, "object", 48, fit=False))
    torch.testing.assert_close(render_prediction(opencv_to_y_up(top), f, "camera", 48, fit=False),
                               render_prediction(top, f, "object", 48, fit=False))


def test_render_prediction_empty_and_bad_frame():
    empty = render_prediction(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64), "camera", 16)
    assert torch.equal(empty, torch.ones(3, 16, 16))
    with pytest.raises(InvalidInputError, match="frame"):
        render_prediction(torch.rand(3, 3), torch.tensor([[0, 1, 2]]), "world", 16)


def test_render_samples_tiles_a_batch():
    sphere = ico_sphere(1)
    v, f = sphere.verts_list()[0] * 0.3, sphere.faces_list()[0]
    meshes = Meshes([v, v, torch.zeros(0, 3)], [f, f, torch.zeros(0, 3, dtype=torch.int64)])
    sheet = render_samples(meshes, 32)
    assert sheet.shape[0] == 3 and sheet.shape[2] > 2 * 32 and sheet.shape[1] > 2 * 32  # 2 x 2 grid
    tile = render_prediction(v, f, "object", 32, fit=False)
    assert int(_blue(sheet).sum()) == pytest.approx(2 * int(_blue(tile).sum()), rel=0.01)
    assert render_samples(meshes, 32, labels=["a", "b", "c"], ncols=3).shape[2] > 3 * 32
