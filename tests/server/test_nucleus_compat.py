"""The official ``scale-nucleus`` client (0.22.3) against a live Ocula server: the
tutorial flow, and what one client writes the other reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from ocula import BoxAnnotation as OculaBox
from ocula.client.client import Client
from tests.conftest import make_images
from tests.server.conftest import Live

nucleus = pytest.importorskip(
    "nucleus", reason="scale-nucleus is not installed (pip install scale-nucleus==0.22.3)")

REF = "cam 1/frame 0.jpg"  # a slash and spaces: one percent-encoded path segment


@pytest.fixture
def nc(live: Live, monkeypatch: pytest.MonkeyPatch) -> object:
    # The client sleeps 5 s between job polls; our jobs take milliseconds.
    monkeypatch.setattr(nucleus.async_job, "JOB_POLLING_INTERVAL", 0.05)
    return nucleus.NucleusClient(live.key, endpoint=f"{live.url}/v1/nucleus")


def test_tutorial_flow(nc: object, live: Live, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 12, size=(100, 80))
    refs = [REF] + [f"img {i}" for i in range(1, 12)]
    ds = nc.create_dataset("tutorial", is_scene=False)
    assert ds.info().name == "tutorial" and ds.info().length == 0

    # Local files: multipart, 10 per request, one async job per request.
    items = [nucleus.DatasetItem(image_location=str(p), reference_id=r,
                                 metadata={"i": i}) for i, (p, r) in
             enumerate(zip(paths, refs, strict=True))]
    job = ds.append(items)
    job.sleep_until_complete(verbose_std_out=False)
    assert job.status()["status"] == "Completed"
    assert ds.info().length == 12 and ds.size == 12
    print(ds)  # GET dataset/{id}/name and is_scene

    # Remote URLs: the signed-URL NDJSON upload. Our own (signed) image URLs serve as
    # the remote images, fetched back by the server.
    served = {it.reference_id: it.image_location for it in ds.items}
    assert requests.get(served[REF], timeout=10).content == paths[0].read_bytes()
    remote = [nucleus.DatasetItem(image_location=served[r], reference_id=f"remote {r}")
              for r in refs[:3]]
    job = ds.append(remote)
    job.sleep_until_complete(verbose_std_out=False)
    assert ds.info().length == 15

    annotations = [
        nucleus.BoxAnnotation(label="car", x=10, y=10, width=30, height=20, reference_id=REF,
                              annotation_id="box-1", metadata={"occluded": False}),
        nucleus.PolygonAnnotation(label="road", vertices=[nucleus.Point(0, 0),
                                                          nucleus.Point(50, 0),
                                                          nucleus.Point(50, 40)],
                                  reference_id=REF, annotation_id="poly-1"),
        nucleus.CategoryAnnotation(label="day", reference_id="img 1"),
        nucleus.KeypointsAnnotation(label="person", keypoints=[nucleus.Keypoint(5, 5),
                                                               nucleus.Keypoint(visible=False)],
                                    names=["head", "foot"], skeleton=[[0, 1]],
                                    reference_id="img 2", annotation_id="kp-1"),
    ]
    result = ds.annotate(annotations)
    assert result["annotations_processed"] == 4

    loc = ds.refloc(REF)
    assert loc["item"].reference_id == REF and loc["item"].metadata == {"i": 0}
    assert loc["annotations"]["box"][0].width == 30
    assert loc["annotations"]["polygon"][0].vertices[2].x == 50
    assert ds.refloc("img 2")["annotations"]["keypoints"][0].names == ["head", "foot"]
    # The client sends its batches concurrently: insertion order is not refs' order.
    assert ds.iloc(0)["item"].reference_id in refs
    assert ds.loc(loc["item"].dataset_item_id)["item"].reference_id == REF

    slc = ds.create_slice("interesting", [REF, "img 1"])
    info = slc.info()
    assert info["name"] == "interesting" and info["dataset_id"] == ds.id
    assert [i.reference_id for i in slc.items] == [REF, "img 1"]
    slc.append(["img 2"])
    assert len(slc.items) == 3

    model = nc.add_model(name="detector", reference_id="org/detector-v1")
    preds = [nucleus.BoxPrediction(label="car", x=12, y=10, width=30, height=20,
                                   reference_id=REF, confidence=0.8,
                                   class_pdf={"car": 0.8, "bus": 0.2}),
             nucleus.BoxPrediction(label="bus", x=1, y=1, width=5, height=5,
                                   reference_id="img 1", confidence=0.3)]
    run = model.create_run("first run", ds, preds)
    assert run.info()["prediction_count"] == 2
    assert run.refloc(REF)["box"][0].confidence == 0.8
    committed = run.commit({"class_agnostic": False, "allowed_label_matches": [
        {"ground_truth_label": "car", "model_prediction_label": "car"}]})
    commit_job = nc.get_job(committed["job_id"])
    with pytest.raises(nucleus.async_job.JobError) if not hasattr(
            live.service, "commit_run") else _nothing():
        commit_job.sleep_until_complete(verbose_std_out=False)

    assert [d.id for d in nc.datasets] == [ds.id]
    assert nc.list_datasets()["dataset_ids"] == [ds.id]
    assert [m.reference_id for m in nc.models] == ["org/detector-v1"]
    assert {i.reference_id for i in ds.items} == set(refs) | {f"remote {r}" for r in refs[:3]}
    paged = [i.reference_id for i in ds.items_generator(page_size=4)]
    assert sorted(paged) == sorted(i.reference_id for i in ds.items)
    assert len(list(ds.query_items(""))) == 15
    with pytest.raises(nucleus.errors.NucleusAPIError) as err:
        list(ds.query_items("((( not a query"))
    assert err.value.status_code == 400
    exported = ds.items_and_annotations()
    by_ref = {row["item"].reference_id: row["annotations"] for row in exported}
    assert by_ref[REF]["box"][0].label == "car" and by_ref["img 1"]["category"][0].label == "day"
    assert len(list(ds.items_and_annotation_generator())) == 15

    ds.update_item_metadata({"img 3": {"weather": "rain"}})
    assert ds.refloc("img 3")["item"].metadata == {"i": 3, "weather": "rain"}
    assert isinstance(ds.delete_item(REF), dict)
    assert ds.info().length == 14
    with pytest.raises(nucleus.errors.NucleusAPIError):
        ds.refloc(REF)
    assert isinstance(nc.delete_slice(slc.id), dict)
    assert isinstance(nc.delete_dataset(ds.id), dict)
    assert nc.datasets == []


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_both_clients_see_the_same_data(nc: object, live: Live, tmp_path: Path) -> None:
    paths = make_images(tmp_path / "imgs", 3)
    oc = Client(live.url, api_key=live.key)
    # Written with Ocula's client, read with Nucleus'.
    ods = oc.create_dataset("from-ocula")
    ods.append([__import__("ocula").DatasetItem(str(p), f"o/{i}") for i, p in enumerate(paths)])
    ods.annotate([OculaBox("car", 1, 2, 3, 4, reference_id="o/0", annotation_id="a")])
    seen = nc.get_dataset(ods.id)
    assert seen.info().length == 3
    box = seen.refloc("o/0")["annotations"]["box"][0]
    assert (box.label, box.x, box.annotation_id) == ("car", 1, "a")
    assert requests.get(seen.items[0].image_location, timeout=10).content == \
        paths[0].read_bytes()
    # Written with Nucleus' client, read with Ocula's.
    nds = nc.create_dataset("from-nucleus", is_scene=False)
    nds.append([nucleus.DatasetItem(image_location=str(paths[0]), reference_id="n 0")]
               ).sleep_until_complete(verbose_std_out=False)
    nds.annotate([nucleus.BoxAnnotation(label="bus", x=5, y=5, width=10, height=10,
                                        reference_id="n 0", annotation_id="b")])
    mine = oc.get_dataset("from-nucleus")
    assert [i.reference_id for i in mine.items] == ["n 0"]
    assert [(a.label, a.annotation_id) for a in mine.annotations()] == [("bus", "b")]
    model = oc.add_model("m", "shared-model")
    run = nc.get_model(model.id).create_run("nucleus run", nds, [nucleus.BoxPrediction(
        label="bus", x=5, y=5, width=10, height=10, reference_id="n 0", confidence=0.9)])
    assert oc.get_model_run(run.model_run_id).predictions()[0].confidence == 0.9
    oc.close()


def test_auth_and_errors_are_json(nc: object, live: Live) -> None:
    base = f"{live.url}/v1/nucleus"
    assert requests.get(f"{base}/dataset/", timeout=10).status_code == 401
    bad = nucleus.NucleusClient("wrong-key", endpoint=base)
    with pytest.raises(nucleus.errors.NucleusAPIError):
        bad.datasets  # noqa: B018 - the property makes the request
    answer = requests.get(f"{base}/autotag/xyz", auth=(live.key, ""), timeout=10)
    assert answer.status_code == 501 and "not supported" in answer.json()["detail"]
    answer = requests.delete(f"{base}/dataset/ds_missing", auth=(live.key, ""), timeout=10)
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    ds = nc.create_dataset("x", is_scene=False)
    item = ds.items  # empty
    assert item == []
    signed = nc.make_request({}, f"dataset/{ds.id}/signedUrl/abc123",
                             requests_command=requests.get)["signed_url"]
    assert requests.put(signed.replace("sig=", "sig=0"), data=b"{}", timeout=10).status_code \
        == 404
    assert requests.put(signed, data=b"{}\n", timeout=10).json() == {}


def test_rejected_items_fail_the_job_with_readable_errors(nc: object, tmp_path: Path) -> None:
    good = make_images(tmp_path / "imgs", 1)[0]
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(good.read_bytes()[:300])
    ds = nc.create_dataset("partial", is_scene=False)
    job = ds.append([nucleus.DatasetItem(image_location=str(good), reference_id="good"),
                     nucleus.DatasetItem(image_location=str(bad), reference_id="bad one")])
    with pytest.raises(nucleus.async_job.JobError):
        job.sleep_until_complete(verbose_std_out=False)
    assert job.status()["status"] == "Errored_Partial"
    errors = job.errors()
    assert len(errors) == 1 and errors[0].startswith("bad one: ")
    assert [i.reference_id for i in ds.items] == ["good"]
