"""A snapshot of the feature definitions and the one way to turn feature references into a retrieval plan.

The SDK holds a catalog fetched from the control plane and plans online and offline retrievals with it
in-process; the server plans with the same code, so both paths agree on names, order and errors.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from strato.errors import InvalidArgument, NotFound
from strato.specs.expressions import expression_names
from strato.specs.features import (
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeature,
    OnDemandFeatureView,
    parse_ref,
)


@dataclass
class ViewPlan:
    view: FeatureView
    join_keys: tuple[str, ...]
    features: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)


@dataclass
class OnDemandPlan:
    view: OnDemandFeatureView
    features: list[OnDemandFeature]
    output_names: list[str]
    # expression name -> the column it reads (a source feature's output name, or a request field)
    inputs: dict[str, str]


@dataclass
class RetrievalPlan:
    views: list[ViewPlan]
    on_demand: list[OnDemandPlan]
    outputs: list[str]  # the feature columns returned, in the order asked
    request_fields: list[str]  # values the caller must send (on-demand inputs)

    @property
    def join_keys(self) -> list[str]:
        keys: list[str] = []
        for plan in self.views:
            keys += [k for k in plan.join_keys if k not in keys]
        return keys


def _guess(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class FeatureCatalog:
    entities: dict[str, Entity] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    services: dict[str, FeatureService] = field(default_factory=dict)
    on_demand: dict[str, OnDemandFeatureView] = field(default_factory=dict)

    # Serialization (the control plane sends the whole catalog in one answer) -------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "entities": [e.model_dump(mode="json") for e in self.entities.values()],
            "views": [v.model_dump(mode="json") for v in self.views.values()],
            "services": [s.model_dump(mode="json") for s in self.services.values()],
            "on_demand": [o.model_dump(mode="json") for o in self.on_demand.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureCatalog:
        return cls(
            entities={e["name"]: Entity.model_validate(e) for e in data.get("entities", [])},
            views={v["name"]: FeatureView.model_validate(v) for v in data.get("views", [])},
            services={s["name"]: FeatureService.model_validate(s) for s in data.get("services", [])},
            on_demand={o["name"]: OnDemandFeatureView.model_validate(o) for o in data.get("on_demand", [])},
        )

    # Lookups -----------------------------------------------------------------------------------------
    def view(self, name: str) -> FeatureView:
        if name not in self.views:
            raise NotFound(f"no feature view {name!r}{_guess(name, list(self.views))}")
        return self.views[name]

    def join_keys(self, view: FeatureView) -> tuple[str, ...]:
        keys: list[str] = []
        for entity in view.entities:
            if entity not in self.entities:
                raise NotFound(f"feature view {view.name!r} uses entity {entity!r}, which does not exist")
            keys += [k for k in self.entities[entity].join_keys if k not in keys]
        return tuple(keys)

    def references(self, features: list[str] | str) -> list[str]:
        """Feature references of a list or of a feature service's name."""
        if isinstance(features, str):
            if features not in self.services:
                raise NotFound(f"no feature service {features!r}{_guess(features, list(self.services))}")
            return list(self.services[features].features)
        if not features:
            raise InvalidArgument("ask for at least one feature (VIEW:FEATURE) or a feature service")
        return list(features)

    def expand(self, ref: str) -> list[tuple[str, str]]:
        """One reference as (view, feature) pairs, checked: ``view:*`` is every feature of the view."""
        try:
            view_name, feature = parse_ref(ref)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        if view_name in self.on_demand:
            names = [f.name for f in self.on_demand[view_name].features]
        elif view_name in self.views:
            names = [f.name for f in self.views[view_name].features]
        else:
            known = list(self.views) + list(self.on_demand)
            raise NotFound(f"feature {ref!r}: no feature view {view_name!r}{_guess(view_name, known)}")
        if feature == "*":
            return [(view_name, name) for name in names]
        if feature not in names:
            raise NotFound(
                f"feature {ref!r}: view {view_name!r} has no feature {feature!r}{_guess(feature, names)} "
                f"(it has: {', '.join(names)})"
            )
        return [(view_name, feature)]

    # Planning ----------------------------------------------------------------------------------------
    def plan(self, features: list[str] | str, *, full_feature_names: bool = False) -> RetrievalPlan:
        pairs: list[tuple[str, str]] = []
        for ref in self.references(features):
            pairs += [p for p in self.expand(ref) if p not in pairs]
        views: dict[str, ViewPlan] = {}
        on_demand: dict[str, OnDemandPlan] = {}
        outputs: list[str] = []

        def output_name(view: str, feature: str) -> str:
            return f"{view}__{feature}" if full_feature_names else feature

        def view_plan(name: str) -> ViewPlan:
            if name not in views:
                view = self.view(name)
                views[name] = ViewPlan(view, self.join_keys(view))
            return views[name]

        for view_name, feature in pairs:
            name = output_name(view_name, feature)
            if name in outputs:
                raise InvalidArgument(
                    f"two features would both be named {name!r}; ask with full_feature_names=True "
                    "(columns become VIEW__FEATURE) or leave one out"
                )
            outputs.append(name)
            if view_name in self.on_demand:
                odfv = self.on_demand[view_name]
                plan = on_demand.setdefault(view_name, OnDemandPlan(odfv, [], [], {}))
                plan.features.append(next(f for f in odfv.features if f.name == feature))
                plan.output_names.append(name)
            else:
                vp = view_plan(view_name)
                vp.features.append(feature)
                vp.output_names.append(name)
        request_fields: list[str] = []
        for plan in on_demand.values():
            self._bind_inputs(plan, view_plan, request_fields)
        return RetrievalPlan(list(views.values()), list(on_demand.values()), outputs, request_fields)

    def _bind_inputs(self, plan: OnDemandPlan, view_plan: Any, request_fields: list[str]) -> None:
        """Map each name an on-demand expression reads to a request field or a source feature, fetching
        source features the caller did not ask for under hidden names."""
        odfv = plan.view
        request = {f.name for f in odfv.request}
        for feature in plan.features:
            for name in sorted(expression_names(feature.expression)):
                if name in plan.inputs:
                    continue
                if name in request:
                    plan.inputs[name] = name
                    if name not in request_fields:
                        request_fields.append(name)
                    continue
                source = next((s for s in odfv.sources if self.view(s).feature(name) is not None), None)
                if source is None:
                    raise InvalidArgument(
                        f"on-demand view {odfv.name!r}: {name!r} is neither a request field nor a feature of "
                        f"its sources ({', '.join(odfv.sources) or 'none'})"
                    )
                vp = view_plan(source)
                if name in vp.features:
                    plan.inputs[name] = vp.output_names[vp.features.index(name)]
                else:
                    hidden = f"__{source}__{name}"
                    vp.features.append(name)
                    vp.output_names.append(hidden)
                    plan.inputs[name] = hidden
