"""What a person does with their own account as a whole: delete it, take their data away.

Changing the password is the accounts module's alone (`Accounts.change_password`);
deleting an account and exporting one's data reach across accounts, social and
messaging, so they live here, above those modules and below the HTTP edge.
"""

from chatapp.own_account.deletion import AccountDeletion
from chatapp.own_account.export import OwnExport

__all__ = ["AccountDeletion", "OwnExport"]
