"""The Challenges pages: a list with the create form, and one challenge with its live
leaderboard. Server-rendered shells that ``static/js/pages/challenges.js`` fills through the
challenges API and keeps live over the ``/challenges`` Socket.IO namespace."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, request

from trackeep_desktop import challenges
from trackeep_desktop.web.auth import current_user, page_login_required

bp = Blueprint("challenges_web", __name__)


def init_app(app: Flask, state) -> None:
    """The Challenges pages."""
    app.register_blueprint(bp)


@bp.get("/challenges")
@page_login_required
def challenge_list():
    return render_template("challenges/challenges.html", rule_types=challenges.RULE_LABELS)


@bp.get("/challenges/<id:challenge_id>")
@page_login_required
def challenge_page(challenge_id: int):
    token = request.args.get("token")
    # Not visible: the error handler's 404 page, as the API's 404 (existence not disclosed).
    challenge = challenges.visible_challenge(current_user().id, challenge_id, token)
    return render_template("challenges/challenge.html", challenge=challenge, token=token or "",
                           rule_types=challenges.RULE_LABELS)
